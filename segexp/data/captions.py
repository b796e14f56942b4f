"""Clothing-phrase parser: split a person caption into an identity text and a clothing text.

CUHK-PEDES, ICFG-PEDES and RSTPReid have one free-form caption per image and no separate clothing text. The
parser is a deterministic lexicon rule (no model download):
1. a clothing phrase is a clothing or carried-item noun (LEXICON below) together with the run of modifiers
   right before it: colours, patterns, fabrics, lengths and fits, determiners and "pair of";
   "X and Y <noun>" colour pairs stay in one phrase;
2. the clothing text is the phrases joined by ", " (or "unknown clothing" when there are none);
3. the identity text is the caption with those phrases and the dangling clothing verbs ("wearing", "dressed in",
   "carrying", "has on"...) removed (or "a person" when fewer than two words remain).
Gender, age, hair, build, pose and accessories on the body (glasses) stay in the identity text.
"""
from __future__ import annotations

import re

CLOTHING = {
    "shirt", "shirts", "t-shirt", "t-shirts", "tshirt", "tee", "top", "tops", "blouse", "jacket", "jackets", "coat", "coats",
    "hoodie", "sweater", "sweatshirt", "cardigan", "vest", "dress", "dresses", "skirt", "skirts", "pants", "trousers",
    "jeans", "shorts", "leggings", "tights", "shoes", "shoe", "sneakers", "boots", "sandals", "heels", "slippers",
    "socks", "hat", "cap", "scarf", "belt", "gloves", "suit", "uniform", "outfit", "clothes", "clothing", "jumpsuit",
    "overalls", "capris", "bag", "backpack", "purse", "handbag", "umbrella", "satchel", "suitcase", "tote", "sleeves",
    "collar", "hood",
}
MODIFIERS = {
    "a", "an", "the", "his", "her", "their", "some", "pair", "pairs", "of", "and", "light", "dark", "bright", "pale",
    "black", "white", "grey", "gray", "red", "blue", "green", "yellow", "orange", "purple", "pink", "brown", "beige",
    "khaki", "navy", "tan", "maroon", "silver", "gold", "golden", "striped", "plaid", "checked", "checkered", "dotted",
    "floral", "printed", "patterned", "plain", "denim", "leather", "cotton", "wool", "woolen", "knit", "long", "short",
    "sleeved", "sleeveless", "long-sleeved", "short-sleeved", "tight", "loose", "baggy", "skinny", "casual", "formal",
    "colored", "coloured", "multicolored", "high", "low", "heeled", "ankle", "knee", "length", "knee-length",
    "button", "up", "button-up", "zip", "v-neck", "hooded", "cross", "body", "shoulder", "sports", "running", "tennis",
    "flip", "flops", "rain", "school", "large", "small", "big", "little", "black-and-white",
}
VERBS = re.compile(r"\b(?:is\s+|are\s+|and\s+)?(?:wearing|wears|wear|dressed\s+in|carrying|carries|holding|holds|has\s+on|"
                   r"with|in|on)\s*(?=[,.;]|$|\band\b)", re.IGNORECASE)
WORD = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*|[^\sA-Za-z]")


def split_caption(caption: str) -> tuple[str, str]:
    """caption → (identity text, clothing text)."""
    tokens = WORD.findall(caption)
    lower = [t.lower() for t in tokens]
    keep = [True] * len(tokens)
    phrases = []
    i = 0
    while i < len(tokens):
        if lower[i] in CLOTHING:
            j = i
            while j > 0 and keep[j - 1] and lower[j - 1] in MODIFIERS:
                j -= 1
            while j < i and lower[j] in ("and", "of"):  # a phrase does not start with a connective
                j += 1
            end = i + 1
            while end < len(tokens) and lower[end] in CLOTHING:  # "tennis shoes", "rain coat"
                end += 1
            phrases.append(" ".join(tokens[j:end]))
            for k in range(j, end):
                keep[k] = False
            i = end
        else:
            i += 1
    cloth = ", ".join(phrases) if phrases else "unknown clothing"
    rest = " ".join(t for t, k in zip(tokens, keep) if k)
    rest = re.sub(r"\s+([,.;])", r"\1", rest)
    for _ in range(3):  # verbs left without an object, then the punctuation they leave behind
        rest = VERBS.sub("", rest)
        rest = re.sub(r"\s*,\s*(?=[,.;]|$)", "", rest)
        rest = re.sub(r"\b(?:and|with)\s*(?=[,.;]|$)", "", rest, flags=re.IGNORECASE)
        rest = re.sub(r"\s{2,}", " ", rest).strip(" ,;")
        rest = re.sub(r"\s+([,.;])", r"\1", rest)
        rest = re.sub(r"([,;])\.", ".", rest)
    identity = rest if len(re.findall(r"[A-Za-z]+", rest)) >= 2 else "a person"
    return identity, cloth
