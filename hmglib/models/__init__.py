"""Models of the book: one file per architecture, a builder for backbones and the
pretrained weights of the small CPU backbone."""

from hmglib.models.backbones import SmallCNN_Weights, build_backbone, small_cnn
from hmglib.models.hrn import HRN, HRNOutput

__all__ = ["HRN", "HRNOutput", "SmallCNN_Weights", "build_backbone", "small_cnn"]
