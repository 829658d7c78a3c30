"""Tiny random stand-ins for VBench's models, saved in the layout ``fastvmt.metrics.vbench.LAYOUT`` names.

AMT-S has one size: its stand-in is the whole network (3.0M parameters) with random weights, saved as the
released ``amt-s.pth`` is read (the tensors under ``"state_dict"``, next to the training epoch)."""

from collections import OrderedDict

import pytest

#: The output layers of AMT-S's flows, blending masks, residuals and merging convolution: (name, output channels
#: to zero, or None for all). Zeroed, the network predicts the average of its two frames (no motion, masks 1/2).
FLOW_OUTPUTS = (("decoder4.convblock.2", 4), ("decoder3.convblock.2", 4), ("decoder2.convblock.2", 4),
                ("decoder1.convblock.2", None), ("update4.flow_head.2", None), ("update3.flow_head.2", None),
                ("update2.flow_head.2", None), ("comb_block.2", None))


def write_amt_s(path, seed=0, averaging=False):
    """A random AMT-S checkpoint at ``path``; ``averaging``: with :data:`FLOW_OUTPUTS` zeroed."""
    import torch

    from fastvmt.metrics.amt import AMTS

    torch.manual_seed(seed)
    state = AMTS().state_dict()
    if averaging:
        for name, channels in FLOW_OUTPUTS:
            weight, bias = state[f"{name}.weight"], state[f"{name}.bias"]
            transposed = weight.shape[0] != bias.shape[0]  # ConvTranspose2d weights are (in, out, k, k)
            chosen = slice(None) if channels is None else slice(0, channels)
            (weight[:, chosen] if transposed else weight[chosen]).zero_()
            bias[chosen].zero_()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(OrderedDict(epoch=299, state_dict=state), path)
    return path


def write_tiny_vbench(root):
    """DINO (a ViT), two CLIPs and an aesthetic head, randomly initialised and small, and AMT-S, under ``root``."""
    import torch
    from transformers import CLIPConfig, CLIPModel, ViTConfig, ViTModel

    torch.manual_seed(0)
    vit = ViTConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                    patch_size=8)
    ViTModel(vit, add_pooling_layer=False).save_pretrained(root / "dino_model" / "dino-vitb16")
    for name, width in (("clip-vit-base-patch32", 16), ("clip-vit-large-patch14", 24)):
        config = CLIPConfig(
            text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                             vocab_size=8, max_position_embeddings=16, bos_token_id=0, eos_token_id=1,
                             pad_token_id=1),
            vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                               image_size=32, patch_size=8),
            projection_dim=width,
        )
        CLIPModel(config).save_pretrained(root / "clip_model" / name)
    head = root / "aesthetic_model" / "emb_reader"
    head.mkdir(parents=True)
    torch.save(torch.nn.Linear(24, 1).state_dict(), head / "sa_0_4_vit_l_14_linear.pth")
    write_amt_s(root / "amt_model" / "amt-s.pth")
    return root


@pytest.fixture(scope="module")
def tiny_vbench(tmp_path_factory):
    """A VBench model directory with tiny random models."""
    return write_tiny_vbench(tmp_path_factory.mktemp("tiny_vbench"))
