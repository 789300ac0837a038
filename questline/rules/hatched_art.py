"""Deterministic procedural buddy art: the same traits, stage and items always draw
the same SVG, so hatch/evolve/equip produce real images with no network or model."""

from __future__ import annotations

import hashlib
from html import escape
from typing import Any

SPECIES = ("blob", "cat", "owl", "fox", "drake")
PALETTES = (
    ("#ffb347", "#ff7f50", "#5a3d2b"),
    ("#7ec8e3", "#3f88c5", "#1b2a41"),
    ("#a8e6a3", "#4caf50", "#1e4620"),
    ("#f4a6d7", "#c2185b", "#4a0e2e"),
    ("#d6c6ff", "#7e57c2", "#2e1a5e"),
    ("#fff176", "#fbc02d", "#5d4300"),
)


def traits_for(seed: str) -> dict[str, Any]:
    """Species, palette and markings derived from a seed (the egg id at hatch)."""
    digest = hashlib.sha256(seed.encode()).digest()
    return {
        "species": SPECIES[digest[0] % len(SPECIES)],
        "palette": digest[1] % len(PALETTES),
        "eyes": 1 + digest[2] % 3,
        "spots": digest[3] % 5,
    }


def buddy_svg(traits: dict[str, Any], stage: int, equipped: list[str]) -> str:
    light, main, dark = PALETTES[int(traits["palette"]) % len(PALETTES)]
    size = 60 + 12 * max(1, stage)
    cx, cy = 128, 150
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">',
        f'<rect width="256" height="256" rx="24" fill="{light}"/>',
        f'<ellipse cx="{cx}" cy="{cy}" rx="{size // 2 + 10}" ry="{size // 2}" fill="{main}" stroke="{dark}" stroke-width="4"/>',
    ]
    species = traits["species"]
    if species in ("cat", "fox"):
        ear = size // 3
        parts.append(
            f'<polygon points="{cx - ear},{cy - size // 2 + 6} {cx - ear // 2},{cy - size // 2 - ear} {cx},{cy - size // 2 + 6}" fill="{main}" stroke="{dark}" stroke-width="3"/>'
        )
        parts.append(
            f'<polygon points="{cx},{cy - size // 2 + 6} {cx + ear // 2},{cy - size // 2 - ear} {cx + ear},{cy - size // 2 + 6}" fill="{main}" stroke="{dark}" stroke-width="3"/>'
        )
    elif species == "owl":
        parts.append(f'<ellipse cx="{cx}" cy="{cy + size // 5}" rx="{size // 4}" ry="{size // 5}" fill="{light}"/>')
    elif species == "drake":
        parts.append(f'<path d="M{cx - size // 2} {cy} q-30 -40 -10 -70 q10 30 30 40z" fill="{dark}"/>')
    for i in range(int(traits["spots"])):
        parts.append(f'<circle cx="{cx - size // 3 + i * size // 6}" cy="{cy + size // 4}" r="4" fill="{dark}" opacity="0.4"/>')
    eye_y = cy - size // 8
    for i in range(int(traits["eyes"])):
        ex = cx + (i - (int(traits["eyes"]) - 1) / 2) * 22
        parts.append(f'<circle cx="{ex:.0f}" cy="{eye_y}" r="7" fill="#fff"/><circle cx="{ex:.0f}" cy="{eye_y}" r="3.5" fill="{dark}"/>')
    for n, item in enumerate(sorted(equipped)[:3]):
        hue = int(hashlib.sha256(item.encode()).hexdigest()[:2], 16) * 360 // 256
        parts.append(
            f'<rect x="{cx - 20 + n * 14}" y="{cy - size // 2 - 18}" width="12" height="12" rx="3" fill="hsl({hue},70%,55%)" data-item="{escape(item)}"/>'
        )
    parts.append(f'<text x="12" y="28" font-family="sans-serif" font-size="16" fill="{dark}">stage {stage}</text>')
    parts.append("</svg>")
    return "".join(parts)
