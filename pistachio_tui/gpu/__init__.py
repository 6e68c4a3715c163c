"""GPU monitoring core: fixed-size series, the local NVML sampler, ComfyUI and pod samplers, and the hub.

No Textual here; the GPU screen reads :class:`pistachio_tui.gpu.hub.GpuHub` snapshots.
"""
