"""The camera side: frame sources (cameras, videos, image folders, streams), frames, the frame
detector, scoring loops, image data sets and evaluation."""

import os

from .image_header import MAX_PIXELS

# OpenCV's decoders refuse larger images themselves (for formats whose header is not read here),
# when this package is imported before OpenCV: the variable is read once, as OpenCV loads.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))
