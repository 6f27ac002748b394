"""The camera side: frame sources (cameras, videos, image folders, streams), frames, the frame
detector, scoring loops, image data sets and evaluation."""

# OpenCV's own decoder limit (OPENCV_IO_MAX_IMAGE_PIXELS) is set to MAX_PIXELS by the `vigil`
# command, whose process is Vigil's alone; a program that imports this package keeps its own
# (a line-scan camera's 72-megapixel frames read by the host's code were refused after
# `vigil.load`). The frame sources refuse larger images by their headers either way.
