"""Every GraphQL operation Pistachio sends to RunPod, in one place.

Field names follow RunPod's public GraphQL spec and the official runpod-python
SDK. Pod ids travel as variables, never pasted into the text, so an odd id
cannot change the operation.
"""

from __future__ import annotations

POD_FIELDS = """
      id
      name
      desiredStatus
      imageName
      costPerHr
      adjustedCostPerHr
      gpuCount
      podType
      ports
      volumeInGb
      machine { gpuDisplayName podHostId }
      runtime {
        uptimeInSeconds
        ports { ip isIpPublic privatePort publicPort type }
        gpus { id gpuUtilPercent memoryUtilPercent }
        container { cpuPercent memoryPercent }
      }
"""

ACCOUNT_FIELDS = """
    id
    clientBalance
    currentSpendPerHr
    spendLimit
"""

PODS = f"""
query Pods {{
  myself {{
    pods {{{POD_FIELDS}    }}
  }}
}}
"""

ACCOUNT = f"""
query Account {{
  myself {{{ACCOUNT_FIELDS}  }}
}}
"""

#: Account and pods in one round trip: what a refreshing pods screen asks for.
OVERVIEW = f"""
query Overview {{
  myself {{{ACCOUNT_FIELDS}    pods {{{POD_FIELDS}    }}
  }}
}}
"""

GPU_TYPES = """
query GpuTypes {
  gpuTypes {
    id
    displayName
    memoryInGb
    secureCloud
    communityCloud
    securePrice
    communityPrice
    secureSpotPrice
    communitySpotPrice
    lowestPrice(input: {gpuCount: 1}) { minimumBidPrice uninterruptablePrice }
  }
}
"""

POD_RESUME = """
mutation PodResume($input: PodResumeInput!) {
  podResume(input: $input) { id desiredStatus }
}
"""

#: A spot pod resumes only with a bid per GPU (REST v2 has no bids).
POD_BID_RESUME = """
mutation PodBidResume($input: PodBidResumeInput!) {
  podBidResume(input: $input) { id desiredStatus }
}
"""

#: What REST v2 does not say about a pod: whether it is spot, and its lowest bid to resume.
POD_TYPE = """
query PodType($input: PodFilter!) {
  pod(input: $input) { id podType lowestBidPriceToResume }
}
"""

POD_STOP = """
mutation PodStop($input: PodStopInput!) {
  podStop(input: $input) { id desiredStatus }
}
"""

#: podTerminate returns no object, so the mutation selects nothing.
POD_TERMINATE = """
mutation PodTerminate($input: PodTerminateInput!) {
  podTerminate(input: $input)
}
"""
