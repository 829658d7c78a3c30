"""Built-in backbones, registered as a default plugin."""

from fastvmt.hookspecs import hookimpl


@hookimpl
def fastvmt_register_backbones(register):
    from fastvmt.backbones.patch import PatchBackbone
    from fastvmt.backbones.wan import WanBackbone

    register("wan", WanBackbone)
    register("patch", PatchBackbone)
