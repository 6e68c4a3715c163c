"""GPU monitoring core: fixed-size series, the local NVML sampler, the ComfyUI server sampler, and the hub.

No Textual here; the GPU screen draws :class:`pistachio_tui.gpu.hub.GpuHub` snapshots.
"""
