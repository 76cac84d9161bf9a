"""template.yaml as CloudFormation sees it (short-form intrinsics decoded by cfn-lint's own YAML
loader), the same template after SAM's transform (run offline with the SAM translator that the
pinned SAM CLI uses), and a small resolver of the intrinsic functions the template uses, to
evaluate its IAM policies for given parameter values."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "stack",
    "AWS::URLSuffix": "amazonaws.com",
}
NO_VALUE = object()


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    from cfnlint.decode import cfn_yaml

    # cfn-lint's nodes subclass dict/str/list; a JSON round trip makes plain, comparable values.
    return json.loads(json.dumps(cfn_yaml.load(str(path))))


def sam_transform(template: dict[str, Any]) -> dict[str, Any]:
    """SAM's own transform, offline: what CloudFormation receives after `sam deploy`."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = copy.deepcopy(template)
    for resource in template["Resources"].values():
        # `sam package` replaces local CodeUri folders with the uploaded object.
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://artifacts/mcp-gateway.zip"
    session = boto3.session.Session(region_name=PSEUDO["AWS::Region"])
    translator = Translator(None, Parser(), boto_session=session)
    return translator.translate(template, parameter_values={}, get_managed_policy_map=lambda: {})


class Resolver:
    """Evaluates Ref, Fn::Sub, Fn::If, Fn::GetAtt and conditions for given parameter values;
    resources resolve to `<LogicalId>` and attributes to `<LogicalId.Attr>`."""

    def __init__(self, template: dict[str, Any], **parameters: str) -> None:
        self.template = template
        self.parameters = {
            name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()
        }
        unknown = set(parameters) - set(self.parameters)
        if unknown:
            raise KeyError(f"no such parameters: {unknown}")
        self.parameters.update(parameters)

    def condition(self, name: str) -> bool:
        return self._condition(self.template["Conditions"][name])

    def _condition(self, node: Any) -> bool:
        ((function, args),) = node.items()
        if function == "Fn::Equals":
            left, right = (self.resolve(arg) for arg in args)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self._condition(args[0])
        if function == "Fn::And":
            return all(self._condition(arg) for arg in args)
        if function == "Fn::Or":
            return any(self._condition(arg) for arg in args)
        if function == "Condition":
            return self.condition(args)
        raise ValueError(f"unsupported condition function {function}")

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        if name in PSEUDO:
            return PSEUDO[name]
        return f"<{name}>"

    def resolve(self, node: Any) -> Any:
        if isinstance(node, dict):
            if len(node) == 1:
                ((key, value),) = node.items()
                if key == "Ref":
                    return self._ref(value)
                if key == "Fn::If":
                    name, when_true, when_false = value
                    return self.resolve(when_true if self.condition(name) else when_false)
                if key == "Fn::GetAtt":
                    return f"<{'.'.join(value) if isinstance(value, list) else value}>"
                if key == "Fn::Sub":
                    text, variables = (value, {}) if isinstance(value, str) else value
                    values = {name: self.resolve(expr) for name, expr in variables.items()}

                    def substitute(match: re.Match[str]) -> str:
                        name = match.group(1)
                        if name in values:
                            return str(values[name])
                        if "." in name:
                            return f"<{name}>"
                        return str(self._ref(name))

                    return re.sub(r"\$\{([^}!]+)\}", substitute, text)
            resolved = {key: self.resolve(value) for key, value in node.items()}
            return {key: value for key, value in resolved.items() if value is not NO_VALUE}
        if isinstance(node, list):
            return [item for item in (self.resolve(value) for value in node) if item is not NO_VALUE]
        return node
