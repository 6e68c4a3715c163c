"""RunPod pods: the API client, typed models, derived pod info and the idle guard.

- ``api.RunPodClient`` — async client (pods, account, GPU prices, start/stop/terminate, create, logs):
  REST v2 first (``rest.RestClient``), GraphQL for the account and spot pods; its docstring
  lists which call goes where
- ``http`` — the key only to RunPod's API origins, User-Agent, Retry-After, backoff
- ``models`` — ``Pod``, ``PodRuntime``, ``PortMapping``, ``GpuType``, ``Account``, ``Overview``
- ``pods`` — uptime, spend estimate, money warnings, ComfyUI URL and ``find_comfy`` (probes the
  pod's HTTP ports), SSH command, "this pod"
- ``idle.IdleGuard`` — flags idle pods and, if asked, stops them (never terminates)
- ``monitor.PodsMonitor`` — one refresh of all of the above, for a screen or a loop
- ``errors`` — ``RunPodError`` and its subclasses

Building a pods view on this package::

    key = api.load_api_key()                 # ApiKeyMissing / config.ConfigError → show how to set it
    client = api.RunPodClient(key)           # one per app; await client.aclose() on exit
    monitor = monitor.PodsMonitor(client, guard=idle.IdleGuard(
        idle_minutes=settings.idle_minutes, auto_stop=settings.auto_stop_idle),
        comfy_http=httpx.AsyncClient())       # optional: read each pod's ComfyUI queue
    state = await monitor.refresh()          # every ~10 s in a worker; RunPodError → show .message
    # state.rows: PodSummary (name, gpu, status, uptime, cost_per_hr, spend_estimate,
    #             gpu_util_percent, is_this_pod, comfy_url, ssh); state.account;
    # state.idle[pod_id]: IdleInfo (idle_seconds, idle_cost, flagged, countdown);
    # state.actions / state.stopped / state.stop_errors: what the guard did.
    monitor.guard.cancel(pod_id)             # the user cancels an auto-stop countdown
    await client.start_pod(pod.id, pod.gpu_count or 1)
    await client.stop_pod(pod.id)
    await client.terminate_pod(pod.id, confirm_name=typed_by_user)   # ConfirmationMismatch otherwise
    await pods.probe_comfy(row.comfy_url, http)   # True, or why not; then pods.comfy_server(row) → ServerConfig
    prices = await client.gpu_types()

RunPod's API is rate limited: poll ``overview()`` rather than ``pods()`` and
``account()`` separately, and no faster than every few seconds.
"""
