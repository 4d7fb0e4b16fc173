"""Data: MATLAB-exact resizing, LR degradations, and evaluation datasets (SPEC section 4)."""

from repsr.data.degrade import degrade, matlab_bicubic, modcrop, pillow_bicubic_jpeg
from repsr.data.imresize import imresize

__all__ = ["degrade", "imresize", "matlab_bicubic", "modcrop", "pillow_bicubic_jpeg"]
