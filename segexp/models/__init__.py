"""Plain nn.Modules (no Lightning, no Hydra): usable from a notebook with PyTorch alone."""
from segexp.models.alpha_clip import AlphaCLIPVisual
from segexp.models.clip import create_clip, dense_features, register_model_configs, text_features
from segexp.models.naclip import NACLIPSegmenter
from segexp.models.pamr import PAMR
from segexp.models.sam3 import Sam3Segmenter
from segexp.models.heads import AlignHead, SegHead, region_pool
from segexp.models.region_align import RegionAlignNet, clip_vision_dims
from segexp.models.uninext import UNINEXTViT, load_clip_into_uninext

__all__ = [
    "AlignHead", "AlphaCLIPVisual", "NACLIPSegmenter", "PAMR", "Sam3Segmenter", "RegionAlignNet", "SegHead", "UNINEXTViT", "clip_vision_dims", "create_clip",
    "dense_features", "load_clip_into_uninext", "region_pool", "register_model_configs", "text_features",
]
from segexp.models.clip_teacher import CLIPTeacher  # noqa: E402
from segexp.models.seg_student import SegStudent  # noqa: E402

__all__ += ["CLIPTeacher", "SegStudent"]
from segexp.models.reid_encoders import BertTextEncoder, CLIPImageEncoder, CLIPTextEncoder, TimmViTEncoder  # noqa: E402
from segexp.models.t2i_reid import GradientReversal, T2IReIDModel  # noqa: E402

__all__ += ["BertTextEncoder", "CLIPImageEncoder", "CLIPTextEncoder", "GradientReversal", "T2IReIDModel", "TimmViTEncoder"]
