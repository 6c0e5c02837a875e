"""The policy pack driven the way the Pulumi engine drives it, without the engine.

`record(stack)` runs the real program under Pulumi's mocks and keeps, per resource, what the engine
would hand an analyzer: the URN, type, name, inputs (for `Analyze`), outputs (for `AnalyzeStack`),
and the options (protect, parent, additionalSecretOutputs). Values are in the engine's wire form
(MarshalProperties with KeepSecrets and KeepUnknowns): secrets as the secret signature object,
unknowns as the unknown sentinels. The root `pulumi:pulumi:Stack` resource carries the stack outputs.

`analyze(recorded)` feeds them as protobuf requests to pulumi-policy's own analyzer servicer (the
code `pulumi preview --policy-pack` talks to over gRPC), so the SDK's deserialisation, secret
unwrapping, unknown proxies and enforcement levels are the real ones.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Optional

import pulumi
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import proto, rpc, settings
from pulumi_policy import EnforcementLevel
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policy.botstack_policies import POLICIES
from tests.infra.harness import REPO, run_program

PROJECT = "botstack"
LEVELS = {proto.ADVISORY: "advisory", proto.MANDATORY: "mandatory"}


@dataclass
class Resource:
    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    protect: bool = False
    parent: str = ""
    additional_secret_outputs: list[str] = field(default_factory=list)

    def set(self, key: str, value: Any) -> None:
        """A changed resource: the same value as input and as output."""
        self.inputs[key] = value
        self.outputs[key] = copy.deepcopy(value)


@dataclass
class Recorded:
    stack: str
    resources: list[Resource]

    def named(self, name: str) -> Resource:
        [found] = [r for r in self.resources if r.name == name]
        return found

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    @property
    def root(self) -> Resource:
        [found] = self.of_type("pulumi:pulumi:Stack")
        return found

    def copy(self) -> "Recorded":
        return copy.deepcopy(self)


@dataclass(frozen=True)
class Diagnostic:
    policy: str
    level: str
    urn: str
    message: str


def _wire(value: Any) -> Any:
    """A Python SDK value as the engine marshals it for an analyzer."""
    if isinstance(value, pulumi.output.Unknown) or value is rpc.UNKNOWN:
        return UNKNOWN_STRING_VALUE
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items() if not k.startswith("__") or k == rpc._special_sig_key}
    if isinstance(value, (list, tuple)):
        return [_wire(v) for v in value]
    if isinstance(value, (pulumi.FileAsset, pulumi.StringAsset, pulumi.RemoteAsset)):
        kind = {pulumi.FileAsset: "path", pulumi.StringAsset: "text", pulumi.RemoteAsset: "uri"}[type(value)]
        return {rpc._special_sig_key: rpc._special_asset_sig, kind: getattr(value, kind)}
    if isinstance(value, (pulumi.FileArchive, pulumi.RemoteArchive)):
        kind = "path" if isinstance(value, pulumi.FileArchive) else "uri"
        return {rpc._special_sig_key: rpc._special_archive_sig, kind: getattr(value, kind)}
    if isinstance(value, pulumi.Resource):
        raise TypeError(f"a resource reference in the recorded values: {value}")
    return value


def _secret(value: Any) -> Any:
    return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}


def record(stack: str, preview: bool = False, overrides: Optional[dict[str, Any]] = None) -> Recorded:
    run = run_program(stack, REPO, overrides=overrides, preview=preview)
    if run.error is not None:
        raise run.error
    registered = settings.SETTINGS.monitor.get_registered_resources()
    urn_of = {urn.rsplit("::", 1)[1]: urn for urn in registered}
    root_urn = f"urn:pulumi:{stack}::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-{stack}"
    resources = []
    for args in run.mocks.resources:
        opts = run.options.get(args.name) or pulumi.ResourceOptions()
        parent = urn_of[opts.parent._name] if opts.parent is not None else root_urn
        state = registered[urn_of[args.name]].state
        resources.append(Resource(
            urn=urn_of[args.name], type=args.typ, name=args.name, inputs=_wire(args.inputs),
            outputs=_wire(state), protect=run.protected.get(args.name, False), parent=parent,
            additional_secret_outputs=list(opts.additional_secret_outputs or [])))
    outputs = {k: _secret(_wire(v)) if k in run.secret_outputs else _wire(v) for k, v in run.outputs.items()}
    resources.insert(0, Resource(urn=root_urn, type="pulumi:pulumi:Stack", name=f"{PROJECT}-{stack}",
                                 inputs={}, outputs=outputs))
    return Recorded(stack, resources)


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    return json_format.ParseDict(values, struct_pb2.Struct())


def _options(r: Resource) -> proto.AnalyzerResourceOptions:
    return proto.AnalyzerResourceOptions(protect=r.protect, parent=r.parent if r.type != "pulumi:pulumi:Stack" else "",
                                         additionalSecretOutputs=r.additional_secret_outputs)


def _diagnostics(response) -> list[Diagnostic]:
    return [Diagnostic(d.policyName, LEVELS.get(d.enforcementLevel, str(d.enforcementLevel)), d.urn, d.message)
            for d in response.diagnostics]


def analyze(recorded: Recorded, policies=None) -> list[Diagnostic]:
    """Every diagnostic the pack reports for the recorded stack: Analyze on each resource's
    inputs, then AnalyzeStack on all outputs, as `pulumi preview` does."""
    servicer = _PolicyAnalyzerServicer(PROJECT, "1.0.0", list(policies or POLICIES), EnforcementLevel.MANDATORY)
    found: list[Diagnostic] = []
    for r in recorded.resources:
        request = proto.AnalyzeRequest(type=r.type, urn=r.urn, name=r.name, properties=_struct(r.inputs),
                                       options=_options(r))
        found += [d if d.urn else Diagnostic(d.policy, d.level, r.urn, d.message)
                  for d in _diagnostics(servicer.Analyze(request, None))]
    stack = proto.AnalyzeStackRequest(resources=[
        proto.AnalyzerResource(type=r.type, urn=r.urn, name=r.name, properties=_struct(r.outputs),
                               options=_options(r), parent=r.parent if r.type != "pulumi:pulumi:Stack" else "")
        for r in recorded.resources])
    found += _diagnostics(servicer.AnalyzeStack(stack, None))
    return found
