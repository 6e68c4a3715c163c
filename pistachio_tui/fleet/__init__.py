"""One batch over many ComfyUI servers and RunPod serverless endpoints."""
