"""Flow pictures: the optical-flow colour wheel, arrow overlays, labelled side-by-side panels and
stacked rows, AMF frames."""

from fastvmt.viz.amf import FlowFrames, amf_frames, consecutive_flow, frames_for_grid
from fastvmt.viz.arrows import draw_arrows
from fastvmt.viz.colorwheel import color_wheel_legend, flow_to_color
from fastvmt.viz.panels import side_by_side, stack_rows

__all__ = [
    "FlowFrames",
    "amf_frames",
    "color_wheel_legend",
    "consecutive_flow",
    "draw_arrows",
    "flow_to_color",
    "frames_for_grid",
    "side_by_side",
    "stack_rows",
]
