"""Tiny random stand-ins for VBench's models, saved in the layout ``fastvmt.metrics.vbench.LAYOUT`` names."""

import pytest


def write_tiny_vbench(root):
    """DINO (a ViT), two CLIPs and an aesthetic head, randomly initialised and small, under ``root``."""
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
    return root


@pytest.fixture(scope="module")
def tiny_vbench(tmp_path_factory):
    """A VBench model directory with tiny random models."""
    return write_tiny_vbench(tmp_path_factory.mktemp("tiny_vbench"))
