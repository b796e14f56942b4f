"""A concept-prompted (text) semantic segmenter on transformers' SAM3.

Each class name becomes a text prompt; SAM3 returns instance masks, per-query scores and a presence score per
prompt. Instances are merged into a semantic map by a score-weighted max per pixel (score = sigmoid(query
logit) · sigmoid(presence)); pixels whose best score is below `score_threshold` go to the background class.
The vision backbone runs once per image and is shared by all prompts.

Options: the shared `attention` group on the backbone (through `Sam3ViTAdapter`), mask refinement of the
per-class mask logits (`refine=pamr|gaussian`), a neighbour-aware refinement among the decoder's object queries
weighted by the distance between their predicted box centres (`query_refine`), and LoRA on the backbone's
q/k/v projections for fine-tuning.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segexp import weights
from segexp.attention import AttentionSpec, install
from open_clip.constants import OPENAI_DATASET_MEAN as CLIP_MEAN, OPENAI_DATASET_STD as CLIP_STD
from segexp.models.layers import Renormalise
from segexp.models.lora import add_lora
from segexp.models.pamr import PAMR

log = logging.getLogger(__name__)

SAM3_DOWNLOAD = ("SAM3 weights are gated on Hugging Face: request access to https://huggingface.co/facebook/sam3, download "
                 "the repository (config.json, model.safetensors, tokenizer files) into a folder and pass `{key}=/path/to/sam3`.")


def sam3_config(size: str = "tiny", image_size: int | None = None):
    """`tiny`: SAM3's layout (32 ViT blocks, global at 7/15/23/31, windowed elsewhere) at toy width; `base`: the
    released architecture (1008 px, 72x72 tokens, 24x24 windows)."""
    from transformers import Sam3Config

    if size == "base":
        cfg = Sam3Config()
        if image_size:
            cfg.vision_config.backbone_config.image_size = image_size
        return cfg
    if size != "tiny":
        raise ValueError(f"model.size must be tiny or base, got {size!r}")
    image_size = image_size or 224
    grid = image_size // 14
    return Sam3Config(
        vision_config=dict(
            backbone_config=dict(model_type="sam3_vit_model", hidden_size=48, intermediate_size=96, num_hidden_layers=32,
                                 num_attention_heads=4, image_size=image_size, patch_size=14, window_size=max(grid // 2, 1),
                                 global_attn_indexes=[7, 15, 23, 31], pretrain_image_size=112),
            fpn_hidden_size=32, backbone_feature_sizes=[[4 * grid] * 2, [2 * grid] * 2, [grid] * 2]),
        text_config=dict(model_type="clip_text_model", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, vocab_size=49408, max_position_embeddings=32, projection_dim=32),
        geometry_encoder_config=dict(hidden_size=32, num_layers=1, num_attention_heads=2, intermediate_size=64),
        detr_encoder_config=dict(hidden_size=32, num_layers=1, num_attention_heads=2, intermediate_size=64),
        detr_decoder_config=dict(hidden_size=32, num_layers=2, num_attention_heads=2, intermediate_size=64, num_queries=20),
        mask_decoder_config=dict(hidden_size=32, num_attention_heads=2),
    )


def sam3_depth(size: str) -> int:
    return 32 if size in ("tiny", "base") else 0


def gaussian_smooth(x: torch.Tensor, std: float) -> torch.Tensor:
    """Depthwise Gaussian blur of [B,C,H,W] maps (σ in pixels), reflect borders."""
    r = max(int(3 * std), 1)
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-t**2 / (2 * std**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


class QueryRefiner:
    """softmax(q·qᵀ/√D + Ω_boxes)·q added to the decoder's queries before the mask decoder, Ω_boxes the Gaussian
    of the distance between predicted box centres (σ in normalised image units). Installed as two hooks."""

    def __init__(self, model, std: float = 0.1):
        self.std, self.centres = float(std), None
        self.model = model
        model.detr_decoder.register_forward_hook(self._capture)
        model.mask_decoder.register_forward_pre_hook(self._refine, with_kwargs=True)

    def _capture(self, module, args, output):
        from transformers.models.sam3.modeling_sam3 import inverse_sigmoid

        h = output.intermediate_hidden_states[-1]
        boxes = (inverse_sigmoid(output.reference_boxes[-1]) + self.model.detr_decoder.box_head(h)).sigmoid()  # cxcywh
        self.centres = boxes[..., :2]

    def _refine(self, module, args, kwargs):
        q = kwargs["decoder_queries"]  # [B,Q,D]
        prior = torch.exp(-torch.cdist(self.centres, self.centres) ** 2 / (2 * self.std**2)).to(q.dtype)
        attn = (q @ q.transpose(1, 2) / math.sqrt(q.shape[-1]) + prior).softmax(-1)
        kwargs["decoder_queries"] = q + attn @ q
        return args, kwargs


class Sam3Segmenter(nn.Module):
    def __init__(
        self,
        size: str = "tiny",
        pretrained: str | None = None,
        image_size: int | None = None,
        attention: AttentionSpec | None = None,
        score_threshold: float = 0.3,
        background_class: int | None = 0,
        refine: str = "none",
        refine_std: float = 1.0,
        pamr_steps: int = 10,
        query_refine: Mapping | None = None,
        lora_rank: int = 0,
        context_length: int = 32,
        input_mean: Sequence[float] = CLIP_MEAN,
        input_std: Sequence[float] = CLIP_STD,
    ):
        super().__init__()
        from transformers import Sam3Model

        if refine not in ("none", "pamr", "gaussian"):
            raise ValueError(f"model.segmenter.refine must be none, pamr or gaussian, got {refine!r}")
        if weights.is_random(pretrained):
            self.model = Sam3Model(sam3_config(size, image_size))
            weights.warn_random(f"SAM3 ({size})", self.model)
            self.hf_tokenizer = None
        else:
            folder = Path(str(pretrained)).expanduser()
            if not (folder / "config.json").is_file():
                raise weights.WeightsNotFoundError(SAM3_DOWNLOAD + f" (nothing usable at {folder})", pretrained, "pretrained")
            from transformers import AutoTokenizer

            from segexp.progress import timed

            with timed(f"loading SAM3 from {folder}"):  # ~3.5 GB: tens of seconds from a network disk
                self.model = Sam3Model.from_pretrained(str(folder), local_files_only=True)
            self.hf_tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.model.eval()
        self.image_size = self.model.config.vision_config.backbone_config.image_size
        self.attention_report = install(self.model, attention) if attention is not None else []
        self.score_threshold, self.background_class = float(score_threshold), background_class
        self.refine, self.refine_std = refine, float(refine_std)
        self.pamr = PAMR(pamr_steps, (8, 16)) if refine == "pamr" else None
        qr = dict(query_refine or {})
        self.query_refiner = QueryRefiner(self.model, qr.get("std", 0.1)) if qr.get("enabled") else None
        self.lora = add_lora(self.model.vision_encoder.backbone, ("q_proj", "k_proj", "v_proj"), lora_rank) if lora_rank else []
        self.context_length = int(context_length)
        self.renorm = Renormalise(input_mean, input_std, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # SAM3: mean 0.5, std 0.5
        self.prompt_classes: list[int] = []
        self.num_classes = 0
        self.register_buffer("input_ids", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("text_mask", torch.zeros(0, dtype=torch.long), persistent=False)

    # ------------------------------------------------------------------ prompts
    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.hf_tokenizer is not None:
            enc = self.hf_tokenizer(list(texts), padding="max_length", max_length=self.context_length, truncation=True,
                                    return_tensors="pt")
            return enc["input_ids"], enc["attention_mask"]
        import open_clip  # the same CLIP BPE vocabulary as SAM3's text encoder

        ids = open_clip.tokenize(list(texts), context_length=self.context_length)
        return ids, (ids != 0).long()

    def set_classes(self, query_names: Sequence[Sequence[str]]) -> None:
        """One prompt per class (its first name); the background class, if any, is never prompted."""
        self.num_classes = len(query_names)
        self.prompt_classes = [c for c in range(self.num_classes) if c != self.background_class]
        ids, mask = self.tokenize([query_names[c][0] for c in self.prompt_classes])
        self.input_ids, self.text_mask = ids.to(self.renorm.scale.device), mask.to(self.renorm.scale.device)

    # ------------------------------------------------------------------ forward
    def sam3_inputs(self, image: torch.Tensor) -> torch.Tensor:
        """segexp's normalised image [1,3,H,W] → SAM3 pixels: square `image_size`, mean 0.5, std 0.5."""
        # bilinear resizing is affine-equivariant, so the renormalisation may come first
        return F.interpolate(self.renorm(image), size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)

    def prompt_outputs(self, image: torch.Tensor, prompts: torch.Tensor | None = None):
        """Run SAM3 for every prompt on one image (backbone once): the Sam3ImageSegmentationOutput of [P] prompts."""
        from transformers.models.sam3.modeling_sam3 import Sam3VisionEncoderOutput

        idx = torch.arange(len(self.prompt_classes), device=image.device) if prompts is None else prompts
        vision = self.model.vision_encoder(self.sam3_inputs(image))
        p = len(idx)
        expanded = Sam3VisionEncoderOutput(
            last_hidden_state=vision.last_hidden_state.expand(p, *vision.last_hidden_state.shape[1:]),
            fpn_hidden_states=tuple(t.expand(p, *t.shape[1:]) for t in vision.fpn_hidden_states),
            fpn_position_encoding=tuple(t.expand(p, *t.shape[1:]) for t in vision.fpn_position_encoding),
        )
        return self.model(vision_embeds=expanded, input_ids=self.input_ids[idx], attention_mask=self.text_mask[idx])

    def class_logits(self, out, size: Sequence[int]) -> torch.Tensor:
        """Score-weighted max over each prompt's instances → per-class mask logits [P,h,w] at `size`."""
        scores = out.pred_logits.sigmoid() * out.presence_logits.sigmoid()  # [P,Q]
        masks = F.interpolate(out.pred_masks, size=tuple(size), mode="bilinear", align_corners=False).sigmoid()
        prob = (scores[:, :, None, None] * masks).amax(1).clamp(1e-6, 1 - 1e-6)  # [P,h,w]
        return torch.logit(prob)

    @torch.no_grad()
    def forward(self, image: torch.Tensor, ori_shape: Sequence[int] | None = None):
        """image [1,3,H,W] normalised → (class probabilities [C,h,w], prediction [h,w]) at `ori_shape`."""
        if not self.prompt_classes:
            raise RuntimeError("call set_classes() before segmenting")
        size = tuple(int(s) for s in (ori_shape or image.shape[-2:]))
        logits = self.refine_logits(self.class_logits(self.prompt_outputs(image), size)[None], image)  # [1,P,h,w]
        prob = logits[0].sigmoid()
        cls = prob.new_zeros(self.num_classes, *size)
        cls[self.prompt_classes] = prob
        best, arg = prob.max(0)
        pred = torch.tensor(self.prompt_classes, device=prob.device)[arg]
        if self.background_class is not None:
            cls[self.background_class] = self.score_threshold
            pred[best < self.score_threshold] = self.background_class
        return cls / cls.sum(0, keepdim=True).clamp_min(1e-6), pred

    def refine_logits(self, logits: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """`refine=pamr`: PAMR guided by the image at the logits' size; `gaussian`: a σ-pixel Gaussian blur."""
        if self.refine == "pamr":
            guide = F.interpolate(image, size=logits.shape[-2:], mode="bilinear", align_corners=False)
            return self.pamr(guide, logits)
        if self.refine == "gaussian":
            return gaussian_smooth(logits, self.refine_std)
        return logits

    def trainable_parameters(self) -> dict[str, list[nn.Parameter]]:
        """Fine-tuning groups: the mask decoder, and the LoRA adapters when present."""
        lora = [p for n, p in self.model.named_parameters() if "lora_" in n]
        return {"decoder": list(self.model.mask_decoder.parameters()), "lora": lora}
