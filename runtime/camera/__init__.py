"""The camera side: frame sources (cameras, videos, image folders, streams), frames, the frame
detector, scoring loops, image data sets and evaluation."""
