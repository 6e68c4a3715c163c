"""RunPod pods: the GraphQL client, typed models, derived pod info and the idle guard.

- ``api.RunPodClient`` — async client (pods, account, GPU prices, start/stop/terminate)
- ``models`` — ``Pod``, ``PodRuntime``, ``PortMapping``, ``GpuType``, ``Account``, ``Overview``
- ``pods`` — uptime, spend estimate, ComfyUI URL, SSH command, ``probe_comfy``, "this pod"
- ``idle.IdleGuard`` — flags idle pods and, if asked, stops them (never terminates)
- ``errors`` — ``RunPodError`` and its subclasses
"""
