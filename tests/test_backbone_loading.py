"""Loading Wan checkpoints: the tiny model through the real layout, file checks, safety, size inference."""

import json
import shutil

import pytest
import torch

from fastvmt.backbones import checkpoint
from fastvmt.backbones.architecture import (
    RELEASED_DITS,
    TextEncoderConfig,
    VAEConfig,
    infer_dit_config,
    infer_text_encoder_config,
    infer_vae_config,
)
from fastvmt.backbones.tiny import TINY_DIT, build_tiny_networks, tiny_backbone, write_tiny_checkpoint
from fastvmt.backbones.wan import WanBackbone
from fastvmt.strategies.presets import CAPTURED_BLOCK


def load(directory, **options):
    return WanBackbone.from_pretrained(directory, dtype=torch.float32, device="cpu", **options)


def outputs(backbone, seed=0):
    """Everything a backbone computes, on fixed inputs."""
    gen = torch.Generator().manual_seed(seed)
    video = torch.rand(5, 3, 32, 48, generator=gen) * 2 - 1
    latents = torch.randn(1, 16, 3, 6, 8, generator=gen)
    context = backbone.encode_prompt("a red car drives left")
    negative = backbone.encode_prompt("blurry")
    features = backbone.features(latents, 700.0, context, block=CAPTURED_BLOCK)
    return {
        "context": context,
        "velocity": backbone.velocity(latents, 700.0, context, negative, cfg_scale=4.0),
        "q": features.q,
        "k": features.k,
        "encoded": backbone.encode_video(video),
        "decoded": backbone.decode(latents[:, :, :2]),
    }


#: Float32 outputs of bit-identical weights may still differ in the last bits: MKL/oneDNN pick kernels by CPU
#: and by the memory alignment of the (here mmapped) weights. A loading bug changes them at order 1e-1.
OUTPUT_TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def assert_same_model(expected: WanBackbone, actual: WanBackbone) -> None:
    """Weights bit-identical, part by part; computed outputs equal within :data:`OUTPUT_TOLERANCE`."""
    for part in ("dit", "vae", "text_encoder"):
        want, got = getattr(expected, part).state_dict(), getattr(actual, part).state_dict()
        assert want.keys() == got.keys(), part
        for name in want:
            assert torch.equal(want[name], got[name]), f"{part}.{name}"
    want, got = outputs(expected), outputs(actual)
    for name in want:
        torch.testing.assert_close(got[name], want[name], **OUTPUT_TOLERANCE, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("shards", [1, 3])
def test_written_checkpoint_loads_to_identical_outputs(tmp_path, shards):
    root = write_tiny_checkpoint(tmp_path / "tiny", seed=3, shards=shards)
    loaded = load(root)
    dit, vae, text_encoder = build_tiny_networks(seed=3)
    in_memory = WanBackbone(dit, vae, text_encoder, loaded.tokenizer, dtype=torch.float32, device="cpu")
    assert_same_model(in_memory, loaded)
    if shards > 1:
        assert len(list(root.glob("diffusion_pytorch_model-*-of-00003.safetensors"))) == 3


def test_seeds_give_different_models():
    first, second = outputs(tiny_backbone(seed=0)), outputs(tiny_backbone(seed=1))
    for name in ("context", "velocity", "q", "encoded", "decoded"):
        assert not torch.allclose(first[name], second[name]), name


def test_missing_files_are_listed_in_one_error(tmp_path):
    root = write_tiny_checkpoint(tmp_path / "tiny")
    (root / checkpoint.TEXT_ENCODER_FILE).unlink()
    (root / checkpoint.VAE_FILE).unlink()
    shutil.rmtree(root / checkpoint.TOKENIZER_DIR)
    with pytest.raises(checkpoint.MissingCheckpointFilesError) as error:
        load(root)
    message = str(error.value)
    for name in (checkpoint.TEXT_ENCODER_FILE, checkpoint.VAE_FILE, checkpoint.TOKENIZER_DIR):
        assert name in message
    assert "diffusion_pytorch_model" not in message

    empty = tmp_path / "empty"
    empty.mkdir()
    everything = r"(?s)diffusion_pytorch_model.*umt5.*VAE.*tokenizer"
    with pytest.raises(checkpoint.MissingCheckpointFilesError, match=everything):
        load(empty)
    with pytest.raises(checkpoint.MissingCheckpointFilesError, match="does not exist"):
        load(tmp_path / "nowhere")


def test_missing_shard_is_named(tmp_path):
    root = write_tiny_checkpoint(tmp_path / "tiny", shards=2)
    (root / checkpoint.dit_shard_name(2, 2)).unlink()
    with pytest.raises(checkpoint.MissingCheckpointFilesError, match=checkpoint.dit_shard_name(2, 2)):
        load(root)


class Payload:
    """Pickles to a call of ``exec``: loading it with plain pickle runs code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def test_pickle_carrying_code_is_refused_without_running_it(tmp_path):
    root = write_tiny_checkpoint(tmp_path / "tiny")
    marker = tmp_path / "marker"
    torch.save({"encoder.conv1.weight": torch.zeros(1), "payload": Payload(marker)}, root / checkpoint.VAE_FILE)
    with pytest.raises(checkpoint.UnsafeCheckpointError, match=r"refusing to load .*Wan2\.1_VAE\.pth"):
        load(root)
    assert not marker.exists()
    # The payload is live: an unrestricted unpickler runs it.
    torch.load(root / checkpoint.VAE_FILE, weights_only=False)
    assert marker.read_text() == "ran"


def test_legacy_pth_format_is_read_and_legacy_pickles_with_code_are_refused(tmp_path):
    root = write_tiny_checkpoint(tmp_path / "tiny")
    legacy = shutil.copytree(root, tmp_path / "legacy")  # the loaded reference maps root's files
    for name in (checkpoint.VAE_FILE, checkpoint.TEXT_ENCODER_FILE):
        state = torch.load(legacy / name, weights_only=True)
        torch.save(state, legacy / name, _use_new_zipfile_serialization=False)
    assert_same_model(load(root), load(legacy))

    marker = tmp_path / "marker"
    payload = {"encoder.conv1.weight": torch.zeros(1), "payload": Payload(marker)}
    torch.save(payload, legacy / checkpoint.VAE_FILE, _use_new_zipfile_serialization=False)
    with pytest.raises(checkpoint.UnsafeCheckpointError, match=r"refusing to load .*Wan2\.1_VAE\.pth"):
        load(legacy)
    assert not marker.exists()


def test_tokenizer_asking_for_custom_code_is_refused_without_running_it(tmp_path):
    root = write_tiny_checkpoint(tmp_path / "tiny")
    tokenizer = root / checkpoint.TOKENIZER_DIR
    marker = tmp_path / "marker"
    (tokenizer / "evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from transformers import PreTrainedTokenizerFast\n"
        "class EvilTokenizer(PreTrainedTokenizerFast):\n    pass\n"
    )
    config = json.loads((tokenizer / "tokenizer_config.json").read_text())
    config.update(tokenizer_class="EvilTokenizer", auto_map={"AutoTokenizer": [None, "evil.EvilTokenizer"]})
    (tokenizer / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(checkpoint.UnsafeCheckpointError, match=r"tokenizer in .*umt5-xxl.*custom Python code"):
        load(root)
    assert not marker.exists()


@pytest.mark.parametrize("shard", ["/etc/passwd", "../outside.safetensors", "sub/../../x.safetensors", ".."])
def test_index_naming_files_outside_the_checkpoint_is_refused_before_reading(tmp_path, shard):
    root = write_tiny_checkpoint(tmp_path / "tiny", shards=2)
    index = json.loads((root / checkpoint.DIT_INDEX).read_text())
    first = next(iter(index["weight_map"]))
    index["weight_map"][first] = shard
    (root / checkpoint.DIT_INDEX).write_text(json.dumps(index))
    with pytest.raises(checkpoint.UnsafeCheckpointError, match="not a file name inside"):
        checkpoint.locate_checkpoint(root)


@pytest.mark.parametrize("weight_map", [["a.safetensors"], {"w": 3}, "x"])
def test_index_whose_weight_map_is_not_names_to_files_is_named(tmp_path, weight_map):
    root = write_tiny_checkpoint(tmp_path / "tiny", shards=2)
    (root / checkpoint.DIT_INDEX).write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(ValueError, match=r"safetensors\.index\.json.*weight_map"):
        checkpoint.locate_checkpoint(root)


def test_safetensors_is_preferred_over_pth(tmp_path):
    from safetensors.torch import save_file

    root = write_tiny_checkpoint(tmp_path / "tiny")
    converted = shutil.copytree(root, tmp_path / "converted")  # the loaded reference maps root's files
    for name in (checkpoint.VAE_FILE, checkpoint.TEXT_ENCODER_FILE):
        state = torch.load(converted / name, weights_only=True)
        save_file(state, str((converted / name).with_suffix(".safetensors")))
        (converted / name).write_bytes(b"not a checkpoint")
    assert_same_model(load(root), load(converted))


@pytest.mark.parametrize("content", [b"truncated download", b"", b"PK\x03\x04not a zip", b"\x80\x02}q\x00."])
def test_unreadable_file_is_named(tmp_path, content):
    root = write_tiny_checkpoint(tmp_path / "tiny")
    (root / checkpoint.TEXT_ENCODER_FILE).write_bytes(content)
    with pytest.raises(ValueError, match=r"cannot read .*models_t5_umt5-xxl-enc-bf16\.pth"):
        load(root)


def test_bfloat16_backbone_follows_float32_closely():
    exact, half = outputs(tiny_backbone()), outputs(tiny_backbone(dtype=torch.bfloat16))
    for name in exact:
        assert half[name].dtype == (torch.float32 if name == "decoded" else torch.bfloat16), name
        error = (half[name].float() - exact[name]).norm() / exact[name].norm()
        assert error < 0.1, (name, error)


def test_config_json_gives_heads_and_is_checked_against_weights(tmp_path):
    root = write_tiny_checkpoint(tmp_path / "tiny")
    stored = json.loads((root / checkpoint.CONFIG_FILE).read_text())
    assert load(root).heads == stored["num_heads"] == 2
    (root / checkpoint.CONFIG_FILE).write_text(json.dumps({**stored, "dim": 128}))
    with pytest.raises(ValueError, match="config.json says dim=128 but the DiT weights have dim=64"):
        load(root)
    (root / checkpoint.CONFIG_FILE).unlink()  # dim 64 is not a multiple of Wan's 128-wide heads
    with pytest.raises(ValueError, match="num_heads"):
        load(root)


def test_bad_options_fail_before_reading_files(tmp_path):
    for options, pattern in [
        ({"dtype": torch.int64}, "dtype must be one of"),
        ({"offload": "gpu"}, "offload must be None or 'cpu'"),
        ({"vram_limit": 8.0}, "vram_limit only applies with offload='cpu'"),
        ({"offload": "cpu", "vram_limit": 8.0}, "vram_limit needs a CUDA device"),
    ]:
        with pytest.raises(ValueError, match=pattern):
            WanBackbone.from_pretrained(tmp_path / "nowhere", device="cpu", **{"dtype": torch.float32, **options})


def meta_shapes(module_factory):
    with torch.device("meta"):
        module = module_factory()
    return {name: tuple(t.shape) for name, t in module.state_dict().items()}


@pytest.mark.parametrize("size", ["1.3B", "14B"])
def test_released_dit_sizes_are_inferred_from_shapes_alone(size):
    from fastvmt.backbones.modules import build_dit

    config = RELEASED_DITS[size]
    shapes = meta_shapes(lambda: build_dit(config))
    assert infer_dit_config(shapes) == config  # heads = dim / 128, no config.json needed
    assert infer_dit_config(shapes, {"num_heads": config.num_heads, "text_len": config.text_len}) == config


def released_fingerprints(model_name):
    """diffsynth's MD5s of the key names and shapes of the released Wan files it recognises."""
    from diffsynth.configs import MODEL_CONFIGS

    return {config["model_hash"] for config in MODEL_CONFIGS if config["model_name"] == model_name}


UMT5_XXL = TextEncoderConfig(vocab=256384, dim=4096, dim_attn=4096, dim_ffn=10240, num_heads=64, num_layers=24)


@pytest.mark.parametrize("part", ["1.3B", "14B", "text encoder", "VAE"])
def test_networks_built_from_released_sizes_have_the_released_files_tensor_names(part):
    """The released files (fingerprinted by diffsynth) load into our networks with their names unchanged."""
    from diffsynth.core.loader.file import hash_state_dict_keys

    from fastvmt.backbones.modules import build_dit, build_text_encoder, build_vae

    factory, model_name = {
        "1.3B": (lambda: build_dit(RELEASED_DITS["1.3B"]), "wan_video_dit"),
        "14B": (lambda: build_dit(RELEASED_DITS["14B"]), "wan_video_dit"),
        "text encoder": (lambda: build_text_encoder(UMT5_XXL), "wan_video_text_encoder"),
        "VAE": (lambda: build_vae(VAEConfig()).model, "wan_video_vae"),
    }[part]
    with torch.device("meta"):
        state = factory().state_dict()
    assert hash_state_dict_keys(state) in released_fingerprints(model_name)


def test_tiny_dit_needs_its_stored_head_count():
    from fastvmt.backbones.modules import build_dit

    shapes = meta_shapes(lambda: build_dit(TINY_DIT))
    assert infer_dit_config(shapes, TINY_DIT.stored()) == TINY_DIT
    with pytest.raises(ValueError, match="num_heads=3 does not fit dim=64"):
        infer_dit_config(shapes, {**TINY_DIT.stored(), "num_heads": 3})


def test_dit_whose_image_embedding_contradicts_its_config_or_family_is_rejected():
    from fastvmt.backbones.modules import build_dit

    shapes = {**meta_shapes(lambda: build_dit(TINY_DIT)), "img_emb.proj.0.weight": (1280,)}
    with pytest.raises(ValueError, match="neither Wan2.1 text-to-video nor image-to-video"):
        infer_dit_config(shapes, TINY_DIT.stored())  # says t2v, has an image embedding
    with pytest.raises(ValueError, match="neither"):
        infer_dit_config(meta_shapes(lambda: build_dit(TINY_DIT)), {**TINY_DIT.stored(), "model_type": "flf2v"})


def test_released_text_encoder_and_vae_sizes_are_inferred():
    from fastvmt.backbones.modules import build_text_encoder, build_vae

    assert infer_text_encoder_config(meta_shapes(lambda: build_text_encoder(UMT5_XXL))) == UMT5_XXL
    assert infer_vae_config(meta_shapes(lambda: build_vae(VAEConfig()).model)) == VAEConfig(dim=96, z_dim=16)


def test_cpu_offload_wraps_layers_and_keeps_outputs():
    from diffsynth.core.vram.layers import AutoTorchModule

    plain, offloaded = tiny_backbone(), tiny_backbone(offload="cpu")
    assert any(isinstance(m, AutoTorchModule) for m in offloaded.dit.modules())
    assert any(isinstance(m, AutoTorchModule) for m in offloaded.text_encoder.modules())
    expected, actual = outputs(plain), outputs(offloaded)
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], msg=name)


def test_backbone_is_registered_as_wan(fresh_plugins):
    assert fresh_plugins.get("backbone", "wan") is WanBackbone
