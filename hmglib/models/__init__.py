"""Models of the book: one file per architecture, a builder for backbones."""

from hmglib.models.backbones import build_backbone
from hmglib.models.hrn import HRN, HRNOutput

__all__ = ["HRN", "HRNOutput", "build_backbone"]
