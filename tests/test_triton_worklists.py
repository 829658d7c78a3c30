"""The atomic-free backward kernels' work lists: complete (every gradient term is listed) and in a fixed order.

``key_block_entries`` must list, for every key rectangle, every (pair, query block) with a query whose window
holds a key of that rectangle (a missing entry drops gradient terms), ascending inside each group (the fixed
summation order that makes gradients bit-identical). Checked by brute force over small grids; torch only.
"""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from fastvmt.backends.triton.worklists import key_block_entries, pairs_by_frame


@given(frames=st.lists(st.integers(0, 4), max_size=12), extra=st.integers(0, 2))
def test_pairs_by_frame_groups_every_pair_under_its_frame_in_pair_order(frames, extra):
    count = max(frames, default=-1) + 1 + extra  # frames without pairs get empty ranges
    order, offsets = pairs_by_frame(torch.tensor(frames, dtype=torch.long), count)

    assert offsets.shape == (count + 1,) and offsets[0] == 0 and offsets[-1] == len(frames)
    for frame in range(count):
        group = order[offsets[frame] : offsets[frame + 1]].tolist()
        assert group == [n for n, f in enumerate(frames) if f == frame]


@st.composite
def _window_cases(draw):
    tile = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    tiles = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    grid = (tile[0] * tiles[0], tile[1] * tiles[1])
    extent = (draw(st.integers(1, grid[0])), draw(st.integers(1, grid[1])))
    n, frames = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    starts = torch.stack(
        [torch.randint(0, g - e + 1, (n, tiles[0] * tiles[1]), generator=gen) for g, e in zip(grid, extent)], dim=-1
    )
    return dict(
        starts=starts,
        key_frames=torch.randint(0, frames, (n,), generator=gen),
        frames=frames,
        grid=grid,
        tile=tile,
        extent=extent,
        query_block=(draw(st.integers(1, grid[0] + 1)), draw(st.integers(1, grid[1] + 1))),
        key_block=(draw(st.integers(1, 4)), draw(st.integers(1, 4))),
    )


@given(case=_window_cases())
def test_key_block_entries_cover_every_windowed_query_key_pair_in_order(case):
    (h, w), (th, tw), (eh, ew) = case["grid"], case["tile"], case["extent"]
    (qh, qw), (kh, kw) = case["query_block"], case["key_block"]
    rects_w, blocks_w = -(-w // kw), -(-w // qw)
    rects = -(-h // kh) * rects_w
    entries, offsets = key_block_entries(**case)

    assert offsets.shape == (case["frames"] * rects + 1,) and offsets[-1] == len(entries)
    listed = set()
    for group in range(len(offsets) - 1):
        members = [tuple(e) for e in entries[offsets[group] : offsets[group + 1]].tolist()]
        assert members == sorted(set(members)), "entries of a group must be unique and ascending"
        listed |= {(group, *member) for member in members}
    for pair in range(len(case["starts"])):
        frame = int(case["key_frames"][pair])
        for qr in range(h):
            for qc in range(w):
                r0, c0 = case["starts"][pair, (qr // th) * (w // tw) + qc // tw].tolist()
                block = (qr // qh) * blocks_w + qc // qw
                for kr in range(r0, r0 + eh):
                    for kc in range(c0, c0 + ew):
                        group = frame * rects + (kr // kh) * rects_w + kc // kw
                        assert (group, pair, block) in listed, (pair, (qr, qc), (kr, kc))
