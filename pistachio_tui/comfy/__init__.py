"""ComfyUI protocol: REST client, typed wire data, websocket events and stream, prompt tracking and the per-server session."""
