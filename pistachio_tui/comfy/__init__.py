"""ComfyUI protocol: REST client, typed wire data, websocket events and prompt tracking."""
