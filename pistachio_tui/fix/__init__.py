"""The two-error fix flow: missing node packs through ComfyUI-Manager, missing models found, downloaded and verified."""
