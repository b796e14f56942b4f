"""Image and text encoders for text-to-image ReID. Each exposes `width` (its output size) and maps a batch to
one global feature per sample: images [B,3,H,W] → [B,width]; texts list[str] → [B,width].

Image: a timm ViT built at the ReID resolution (384×128 by default; timm resamples the position embedding of
a 224² checkpoint when it loads it), or open_clip's CLIP visual tower (projected CLS, position embedding
interpolated on the fly).
Text: BERT through transformers, trainable, from a local folder (`local_files_only`) or, offline, a BERT of the
configured size with a WordPiece vocabulary trained by `tokenizers` on the training captions (cached); or
CLIP's text tower.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from segexp import weights
from segexp.atomic import atomic_path
from open_clip.constants import OPENAI_DATASET_MEAN as CLIP_MEAN, OPENAI_DATASET_STD as CLIP_STD
from segexp.models.layers import Renormalise

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


# ----------------------------------------------------------------------------------------------------------
# image encoders
# ----------------------------------------------------------------------------------------------------------
class TimmViTEncoder(nn.Module):
    """timm ViT → CLS feature [B, num_features]; `overrides` (depth, embed_dim, num_heads...) shrink it for tests."""

    def __init__(self, model_name: str = "vit_base_patch16_224", pretrained: bool | str | None = False,
                 img_size: Sequence[int] = (384, 128), input_mean=CLIP_MEAN, input_std=CLIP_STD, **overrides):
        super().__init__()
        import timm

        path = weights.resolve_timm(model_name, pretrained, override="model.net.image_encoder.pretrained")
        self.vit = timm.create_model(model_name, pretrained=path is not None,
                                     pretrained_cfg_overlay={"file": str(path)} if path else None,
                                     img_size=tuple(img_size), num_classes=0, global_pool="token", **overrides)
        cfg = self.vit.pretrained_cfg
        self.renorm = Renormalise(input_mean, input_std, cfg.get("mean", CLIP_MEAN), cfg.get("std", CLIP_STD))
        self.width = int(self.vit.num_features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.vit(self.renorm(images))  # [B, width]: the CLS token after the final norm


class CLIPImageEncoder(nn.Module):
    """open_clip visual tower → projected CLS [B, embed_dim] at any input size (position embedding interpolated)."""

    def __init__(self, clip_name: str = "ViT-B-16", pretrained: str | None = None):
        super().__init__()
        from segexp.models.clip import create_clip

        clip = create_clip(clip_name, pretrained, override="model.net.image_encoder.pretrained")
        self.visual = clip.visual.train()
        self.width = int(self.visual.output_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from segexp.models.clip import dense_features

        return dense_features(self.visual, images)[:, 0]  # ln_post(CLS) @ proj


# ----------------------------------------------------------------------------------------------------------
# tokenizers
# ----------------------------------------------------------------------------------------------------------
def train_wordpiece(texts: Sequence[str], vocab_size: int, cache_dir: str | Path | None = None):
    """A BERT-style (lower-cased) WordPiece tokenizer trained on `texts`; cached by content under `cache_dir`."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    digest = hashlib.sha1(("\n".join(texts) + f"|{vocab_size}").encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"wordpiece-{digest}.json" if cache_dir else None
    if path is not None and path.is_file():
        return Tokenizer.from_file(str(path))
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(list(texts), trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                                                   show_progress=False))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    if path is not None:
        with atomic_path(path) as tmp:
            tok.save(str(tmp))
    log.info("WordPiece tokenizer: %d tokens from %d training texts", tok.get_vocab_size(), len(texts))
    return tok


class BertTextEncoder(nn.Module):
    """BERT (transformers), trainable; the last layer's [CLS] (`pooling=cls`) or token mean (`mean`) → [B, hidden_size].

    `pretrained`: a local Hugging Face folder (config.json, weights, tokenizer files), loaded with
    `local_files_only=True`; null: a randomly initialised BERT of the given size, whose WordPiece tokenizer
    `prepare()` trains on the training captions.
    """

    def __init__(self, pretrained: str | None = None, hidden_size: int = 768, num_layers: int = 12, num_heads: int = 12,
                 intermediate_size: int = 3072, vocab_size: int = 30522, max_length: int = 77, pooling: str = "cls"):
        super().__init__()
        from transformers import BertConfig, BertModel

        if pooling not in ("cls", "mean"):
            raise ValueError(f"BERT pooling must be cls or mean, got {pooling!r}")
        self.max_length, self.pooling = int(max_length), pooling
        self.hf_tokenizer = self.wordpiece = None
        if weights.is_random(pretrained):
            cfg = BertConfig(vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_layers,
                             num_attention_heads=num_heads, intermediate_size=intermediate_size,
                             max_position_embeddings=max(512, self.max_length))
            self.bert = BertModel(cfg, add_pooling_layer=False)
        else:
            from transformers import AutoTokenizer

            folder = Path(str(pretrained)).expanduser()
            if not (folder / "config.json").is_file():
                raise weights.WeightsNotFoundError(
                    f"`{{key}}={pretrained}`: no Hugging Face BERT folder there (config.json missing). Download one "
                    f"once, e.g. `huggingface-cli download bert-base-uncased --local-dir {folder}`, then pass that folder; "
                    f"`{{key}}=null` trains a WordPiece tokenizer on the captions and starts BERT from random weights.",
                    pretrained, "model.net.text_encoder.pretrained")
            self.bert = BertModel.from_pretrained(str(folder), local_files_only=True, add_pooling_layer=False)
            self.hf_tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.width = int(self.bert.config.hidden_size)

    @property
    def needs_vocabulary(self) -> bool:
        return self.hf_tokenizer is None

    def prepare(self, texts: Sequence[str], cache_dir: str | Path | None = None) -> None:
        """Train (or load from cache) the WordPiece vocabulary when no pretrained tokenizer was given."""
        if self.needs_vocabulary and self.wordpiece is None:
            self.set_wordpiece(train_wordpiece(texts, self.bert.config.vocab_size, cache_dir))

    def set_wordpiece(self, tok) -> None:
        if tok.get_vocab_size() > self.bert.config.vocab_size:
            raise ValueError(f"tokenizer has {tok.get_vocab_size()} tokens, BERT's embedding only {self.bert.config.vocab_size}")
        tok.enable_truncation(self.max_length)
        tok.enable_padding(pad_id=tok.token_to_id("[PAD]"), pad_token="[PAD]")
        self.wordpiece = tok

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        if self.hf_tokenizer is not None:
            enc = self.hf_tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
            return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
        if self.wordpiece is None:
            raise RuntimeError("BertTextEncoder has no tokenizer yet: call prepare(training_texts) first")
        enc = self.wordpiece.encode_batch(list(texts))
        return {"input_ids": torch.tensor([e.ids for e in enc]), "attention_mask": torch.tensor([e.attention_mask for e in enc])}

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        dev = self.bert.embeddings.word_embeddings.weight.device
        enc = {k: v.to(dev) for k, v in self.tokenize(texts).items()}
        hidden = self.bert(**enc).last_hidden_state  # [B, T, hidden]
        if self.pooling == "cls":
            return hidden[:, 0]
        # mean over real tokens: a BERT trained from scratch separates captions much sooner this way than by [CLS]
        m = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp_min(1)


class CLIPTextEncoder(nn.Module):
    """open_clip's text tower (trainable) → [B, embed_dim]."""

    def __init__(self, clip_name: str = "ViT-B-16", pretrained: str | None = None):
        super().__init__()
        import open_clip

        from segexp.models.clip import create_clip

        self.clip = create_clip(clip_name, pretrained, override="model.net.text_encoder.pretrained").train()
        self.clip.visual = nn.Identity()  # the text tower is all this encoder uses
        self.tokenizer = open_clip.get_tokenizer(clip_name)
        self.width = int(self.clip.text_projection.shape[1] if self.clip.text_projection is not None else self.clip.transformer.width)

    needs_vocabulary = False

    def prepare(self, texts, cache_dir=None) -> None:
        return None

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        dev = self.clip.token_embedding.weight.device
        return self.clip.encode_text(self.tokenizer(list(texts)).to(dev))


# ----------------------------------------------------------------------------------------------------------
# config entry points: one node per tower, the family chosen by `source` (one override away)
# ----------------------------------------------------------------------------------------------------------
def image_encoder(source: str = "timm", model_name: str = "vit_base_patch16_224", pretrained=None,
                  img_size: Sequence[int] = (384, 128), **timm_overrides) -> nn.Module:
    """source=timm: `TimmViTEncoder(model_name, img_size, **timm_overrides)`; source=open_clip: CLIP's visual tower
    (`model_name` an open_clip name such as ViT-B-16, any input size)."""
    if source == "timm":
        return TimmViTEncoder(model_name, pretrained or False, img_size, **timm_overrides)
    if source == "open_clip":
        return CLIPImageEncoder(model_name, pretrained)
    raise ValueError(f"image encoder source must be timm or open_clip, got {source!r}")


def text_encoder(source: str = "bert", pretrained=None, clip_name: str = "ViT-B-16", **bert_kwargs) -> nn.Module:
    """source=bert: `BertTextEncoder(pretrained, **bert_kwargs)`; source=open_clip: CLIP's text tower."""
    if source == "bert":
        return BertTextEncoder(pretrained, **bert_kwargs)
    if source == "open_clip":
        return CLIPTextEncoder(clip_name, pretrained)
    raise ValueError(f"text encoder source must be bert or open_clip, got {source!r}")
