"""Deployment artefacts from a plan: serving-engine launch arguments, Kubernetes manifests, Dynamo graphs, purchase
orders, and the check that an export still agrees with its plan (README "Deployment export").

Sits beside `reports`: it renders a solved plan for people and tools downstream and never solves.

plan_view     the plan's provenance header and one deployment unit per config in use
engine_flags  the named vLLM / SGLang / Dynamo releases and the flags recorded from them (the one place to change)
engines       launch arguments per unit; the vllm / sglang formats
k8s           Deployments / LeaderWorkerSets, Services, the routing ConfigMap and kustomization.yaml
dynamo        DynamoGraphDeployments for models split into prefill and decode
purchase      the purchase order (CSV + Markdown)
routing       the routing table (workflow step → routes, shares, units and weights)
write         format dispatch and the atomic folder write
verify        `hetplace check --export`
"""
