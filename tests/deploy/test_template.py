"""template.yaml's guarantees, checked on the template and on SAM's transform of it:
- every route requires AWS_IAM, and API Gateway invokes the function with its resource policy;
- the function's runtime, architecture and build method do not change silently;
- every route streams and the function runs in streaming mode (one function serves all routes);
- S3 access stays inside s3://<bucket>/<prefix>, with writes only when AllowWrite is true.
Each check is a function returning the problems it finds, and each is also run on a broken copy of
the template, so that a check that stopped looking would fail here too."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from cfn_model import Resolver, sam_transform

RUNTIME = "provided.al2023"
ARCHITECTURES = ["arm64"]
BUILD_METHOD = "rust-cargolambda"
ROUTES = {
    ("/mcp", "x-amazon-apigateway-any-method"), ("/health", "get"),
    ("/mcp/{upstream}", "x-amazon-apigateway-any-method"), ("/mcp/{upstream}/{proxy+}", "x-amazon-apigateway-any-method"),
    ("/gateway/health", "get"), ("/gateway/stats", "get"), ("/gateway/registry", "get"),
    ("/openapi.json", "get"), ("/docs", "get"),
}
S3_READ = {"s3:ListBucket", "s3:GetObject"}
S3_WRITE = {"s3:PutObject", "s3:DeleteObject"}
ALLOWED_MANAGED_POLICIES = {"AWSXRayDaemonWriteAccess", "service-role/AmazonAPIGatewayPushToCloudWatchLogs"}


def resources(template: dict[str, Any], *types: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] in types}


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources(template, "AWS::Serverless::Function")


# ------------------------------------------------------------------------------------ checks


def runtime_problems(template: dict[str, Any]) -> list[str]:
    problems = []
    globals_function = template.get("Globals", {}).get("Function", {})
    for key in ("Runtime", "Architectures"):
        if key in globals_function:
            problems.append(f"Globals.Function.{key} is set; keep them on the function")
    found = functions(template)
    if not found:
        problems.append("no AWS::Serverless::Function")
    for name, function in found.items():
        props, meta = function["Properties"], function.get("Metadata", {})
        if props.get("Runtime") != RUNTIME:
            problems.append(f"{name}: Runtime {props.get('Runtime')!r}, expected {RUNTIME}")
        if props.get("Architectures") != ARCHITECTURES:
            problems.append(f"{name}: Architectures {props.get('Architectures')!r}, expected {ARCHITECTURES}")
        if meta.get("BuildMethod") != BUILD_METHOD:
            problems.append(f"{name}: BuildMethod {meta.get('BuildMethod')!r}, expected {BUILD_METHOD}")
        if props.get("Handler") != "bootstrap":
            problems.append(f"{name}: Handler must be bootstrap for a provided runtime")
        if props.get("CodeUri") != "functions/mcp-gateway" or meta.get("BuildProperties", {}).get("Binary") != "mcp-gateway":
            problems.append(f"{name}: must build the mcp-gateway binary of functions/mcp-gateway")
    for name, function in resources(sam_transform(template), "AWS::Lambda::Function").items():
        props = function["Properties"]
        if props.get("Runtime") != RUNTIME or props.get("Architectures") != ARCHITECTURES:
            problems.append(f"{name} after the SAM transform: {props.get('Runtime')} {props.get('Architectures')}")
    return problems


def route_problems(template: dict[str, Any]) -> list[str]:
    """On the transformed template: every method of every REST API is SigV4-only, streams, and
    uses the function's resource policy; nothing else exposes the function."""
    problems = []
    out = sam_transform(template)
    exposed = resources(
        out, "AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Route", "AWS::Lambda::Url", "AWS::ApiGateway::Method"
    )
    for name, res in exposed.items():
        if res["Type"] != "AWS::ApiGateway::Method" or res["Properties"].get("AuthorizationType") != "AWS_IAM":
            problems.append(f"{name}: {res['Type']} outside the IAM-checked OpenAPI definition")
    apis = resources(out, "AWS::ApiGateway::RestApi")
    if not apis:
        problems.append("no REST API")
    seen = set()
    for api_name, api in apis.items():
        body = api["Properties"].get("Body")
        if not isinstance(body, dict):
            problems.append(f"{api_name}: no inline OpenAPI body to check")
            continue
        schemes = body.get("components", {}).get("securitySchemes", {}) or body.get("securityDefinitions", {})
        if schemes.get("AWS_IAM", {}).get("x-amazon-apigateway-authtype") != "awsSigv4":
            problems.append(f"{api_name}: no AWS_IAM (awsSigv4) security scheme")
        for path, item in body.get("paths", {}).items():
            if path != "/" and path.endswith("/"):
                problems.append(f"{api_name} {path}: API Gateway folds a trailing slash into {path[:-1]}")
            for method, operation in item.items():
                if not method.startswith("x-amazon-apigateway-any-method") and method not in {
                    "get", "put", "post", "delete", "patch", "head", "options",
                }:
                    continue
                seen.add((path, method))
                where = f"{api_name} {method.upper()} {path}"
                if {"AWS_IAM": []} not in operation.get("security", []) or len(operation.get("security", [])) != 1:
                    problems.append(f"{where}: security is {operation.get('security')}, not AWS_IAM alone")
                integration = operation.get("x-amazon-apigateway-integration", {})
                if integration.get("type") != "aws_proxy":
                    problems.append(f"{where}: integration type {integration.get('type')}, expected aws_proxy")
                if "credentials" in integration:
                    problems.append(f"{where}: integration invokes with {integration['credentials']} (set InvokeRole: NONE)")
                if integration.get("responseTransferMode") != "STREAM":
                    problems.append(f"{where}: responseTransferMode {integration.get('responseTransferMode')}, expected STREAM")
                uri = integration.get("uri", {})
                uri = uri.get("Fn::Sub", "") if isinstance(uri, dict) else uri
                if not str(uri).endswith("/response-streaming-invocations"):
                    problems.append(f"{where}: uri {uri} is not the response-streaming invocation")
    missing = ROUTES - seen
    if missing:
        problems.append(f"routes missing: {sorted(missing)}")
    for name, permission in resources(out, "AWS::Lambda::Permission").items():
        if permission["Properties"].get("Principal") != "apigateway.amazonaws.com":
            problems.append(f"{name}: invoke permission for {permission['Properties'].get('Principal')}")
    return problems


def streaming_problems(template: dict[str, Any]) -> list[str]:
    """The function's response mode matches its integrations: all streamed, so `streaming`."""
    problems = []
    for name, function in functions(template).items():
        mode = function["Properties"].get("Environment", {}).get("Variables", {}).get("MCP_LAMBDA_RESPONSE_MODE")
        events = function["Properties"].get("Events", {})
        modes = {event["Properties"].get("ResponseTransferMode", "BUFFERED") for event in events.values()}
        if modes != {"RESPONSE_STREAM"}:
            problems.append(f"{name}: event ResponseTransferMode {sorted(modes)}; SAM streams only with RESPONSE_STREAM")
        if mode != "streaming":
            problems.append(f"{name}: MCP_LAMBDA_RESPONSE_MODE {mode!r} with streaming integrations")
        for event_name, event in events.items():
            if event["Type"] != "Api":
                problems.append(f"{name}.{event_name}: {event['Type']} event (only the REST API may invoke it)")
            timeout_ms = event["Properties"].get("TimeoutInMillis", 29000)
            if timeout_ms < template["Parameters"]["Timeout"]["MaxValue"] * 1000:
                problems.append(f"{name}.{event_name}: integration timeout {timeout_ms} ms is below the function's")
    return problems


def policy_statements(resolved: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    statements = []
    for name, res in resolved["Resources"].items():
        props = res.get("Properties", {})
        documents = []
        if res["Type"] == "AWS::IAM::Role":
            documents = [policy["PolicyDocument"] for policy in props.get("Policies", [])]
        elif res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents = [props["PolicyDocument"]]
        elif res["Type"] == "AWS::Serverless::Function" and "Policies" in props:
            statements.append((name, {"Effect": "Allow", "Action": "*", "Resource": "SAM Policies"}))
        for document in documents:
            found = document.get("Statement", [])
            for statement in found if isinstance(found, list) else [found]:
                statements.append((name, statement))
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def s3_problems(template: dict[str, Any], **parameters: str) -> list[str]:
    """Resolves the template for `parameters` and checks every IAM statement that can touch S3."""
    resolver = Resolver(template, **parameters)
    resolved = resolver.resolve(template)
    bucket = resolver.parameters["DataBucketName"] or "<DataBucket>"
    prefix = resolver.parameters["DataPrefix"]
    writes = resolver.parameters["AllowWrite"] == "true"
    bucket_arn = f"arn:aws:s3:::{bucket}"
    objects_arn = f"{bucket_arn}/{prefix}*"
    allowed = S3_READ | (S3_WRITE if writes else set())
    problems, granted = [], set()

    for name, res in resolved["Resources"].items():
        for arn in res.get("Properties", {}).get("ManagedPolicyArns", []) if res["Type"] == "AWS::IAM::Role" else []:
            policy = str(arn).split(":policy/", 1)[-1]
            if policy not in ALLOWED_MANAGED_POLICIES:
                problems.append(f"{name}: managed policy {arn} is not on the allow list")
    for name, statement in policy_statements(resolved):
        if "NotAction" in statement or "NotResource" in statement:
            problems.append(f"{name}: NotAction/NotResource statement")
            continue
        actions = {str(action) for action in as_list(statement.get("Action", []))}
        s3_actions = {a for a in actions if a.lower().startswith("s3:") or a == "*"}
        if not s3_actions or statement.get("Effect") != "Allow":
            continue
        for action in s3_actions - allowed:
            problems.append(f"{name}: {action} is not allowed (writes {'on' if writes else 'off'})")
        for action in s3_actions & allowed:
            granted.add(action)
        targets = [str(r) for r in as_list(statement.get("Resource", []))]
        if "s3:ListBucket" in s3_actions:
            if targets != [bucket_arn]:
                problems.append(f"{name}: s3:ListBucket on {targets}, expected [{bucket_arn}]")
            condition = statement.get("Condition", {})
            if condition != {"StringLike": {"s3:prefix": f"{prefix}*"}}:
                problems.append(f"{name}: s3:ListBucket condition {condition} does not pin s3:prefix to {prefix}*")
        if s3_actions - {"s3:ListBucket"}:
            for target in targets:
                if target != objects_arn:
                    problems.append(f"{name}: object access on {target}, expected {objects_arn}")
    if not S3_READ <= granted:
        problems.append(f"reads not granted: {sorted(S3_READ - granted)}")
    if writes and not S3_WRITE <= granted:
        problems.append(f"AllowWrite=true but writes not granted: {sorted(S3_WRITE - granted)}")
    return problems


# ------------------------------------------------------------------------------ the template


def test_function_runtime_architecture_and_build_method(template):
    assert runtime_problems(template) == []


def test_every_route_requires_aws_iam_and_streams(template):
    assert route_problems(template) == []


def test_response_mode_matches_the_integrations(template):
    assert streaming_problems(template) == []


@pytest.mark.parametrize(
    "parameters",
    [
        {},
        {"DataBucketName": "my-data", "DataPrefix": "datasets/"},
        {"DataBucketName": "my-data", "DataPrefix": "teams/a/", "AllowWrite": "true"},
        {"AllowWrite": "true"},
    ],
    ids=["created-bucket", "own-bucket", "own-bucket-writes", "created-bucket-writes"],
)
def test_s3_access_stays_under_the_data_root_prefix(template, parameters):
    assert s3_problems(template, **parameters) == []


def test_writes_are_granted_only_with_allow_write(template):
    resolver = Resolver(template, DataBucketName="my-data", AllowWrite="false")
    actions = {
        action
        for _, statement in policy_statements(resolver.resolve(template))
        for action in as_list(statement.get("Action", []))
    }
    assert not actions & S3_WRITE


def test_data_prefix_must_be_a_non_empty_folder(template):
    # An empty prefix would open the whole bucket; without the trailing slash, `data*` would also
    # match `database/`. The parameter's pattern refuses both before CloudFormation runs.
    pattern = re.compile(template["Parameters"]["DataPrefix"]["AllowedPattern"])
    for good in ["data/", "teams/a/", "2026_q1/raw-files/"]:
        assert pattern.fullmatch(good), good
    for bad in ["", "/", "data", "*", "data/*", "../", "a//b/", "/data/"]:
        assert not pattern.fullmatch(bad), bad
    bucket = re.compile(template["Parameters"]["DataBucketName"]["AllowedPattern"])
    for bad in ["*", "my-bucket/prefix", "arn:aws:s3:::x"]:
        assert not bucket.fullmatch(bad), bad


def test_data_root_env_and_output_use_the_same_prefix(template):
    resolver = Resolver(template, DataBucketName="my-data", DataPrefix="datasets/")
    resolved = resolver.resolve(template)
    env = resolved["Resources"]["McpFunction"]["Properties"]["Environment"]["Variables"]
    assert env["DATA_ROOT"] == "s3://my-data/datasets/"
    assert resolved["Outputs"]["DataRoot"]["Value"] == "s3://my-data/datasets/"
    assert env["ALLOW_WRITE"] == "false"
    assert env["MCP_SESSION_SECRET"].startswith("{{resolve:secretsmanager:")


def test_invoke_policy_grants_execute_api_on_this_api_only(template):
    resolved = Resolver(template, Stage="prod").resolve(template)
    document = resolved["Resources"]["InvokePolicy"]["Properties"]["PolicyDocument"]
    assert document["Statement"] == [
        {
            "Sid": "InvokeMcpEndpoint",
            "Effect": "Allow",
            "Action": "execute-api:Invoke",
            "Resource": "arn:aws:execute-api:us-east-1:123456789012:<McpApi>/prod/*",
        }
    ]


def test_outputs_for_users(template):
    resolved = Resolver(template, Stage="prod").resolve(template)
    outputs = {name: value["Value"] for name, value in resolved["Outputs"].items()}
    url = "https://<McpApi>.execute-api.us-east-1.amazonaws.com/prod/mcp"
    assert outputs["McpUrl"] == url
    assert outputs["ProxyCommand"] == f"mcp-sigv4-proxy --endpoint {url} --region us-east-1"
    assert url in outputs["ProxyConfig"]
    for name in ("FunctionName", "FunctionLogGroupName", "AccessLogGroupName", "InvokePolicyArn"):
        assert name in outputs


def test_access_logs_and_throttling(transformed):
    (stage,) = resources(transformed, "AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": ["AccessLogGroup", "Arn"]}
    assert "$context.identity.userArn" in props["AccessLogSetting"]["Format"]
    (settings,) = props["MethodSettings"]
    assert settings["ResourcePath"] == "/*" and settings["HttpMethod"] == "*"
    assert settings["ThrottlingRateLimit"] == {"Ref": "ThrottlingRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ThrottlingBurstLimit"}


# ------------------------------------------------------- the checks catch what they look for


def broken(template: dict[str, Any], change) -> dict[str, Any]:
    copy_ = copy.deepcopy(template)
    change(copy_)
    return copy_


def function_props(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]["McpFunction"]["Properties"]


def data_statements(template: dict[str, Any]) -> list[Any]:
    role = template["Resources"]["McpFunctionRole"]["Properties"]
    (policy,) = [p for p in role["Policies"] if p["PolicyName"] == "data-root"]
    return policy["PolicyDocument"]["Statement"]


def test_checks_catch_a_changed_runtime_or_architecture(template):
    assert runtime_problems(broken(template, lambda t: function_props(t).update(Architectures=["x86_64"])))
    assert runtime_problems(broken(template, lambda t: function_props(t).update(Runtime="provided.al2")))
    assert runtime_problems(broken(template, lambda t: t["Resources"]["McpFunction"]["Metadata"].pop("BuildMethod")))


def test_checks_catch_a_route_without_aws_iam(template):
    def no_default_authorizer(t):
        t["Resources"]["McpApi"]["Properties"]["Auth"].pop("DefaultAuthorizer")

    def event_without_auth(t):
        function_props(t)["Events"]["Health"]["Properties"]["Auth"] = {"Authorizer": "NONE"}

    def caller_credentials(t):
        t["Resources"]["McpApi"]["Properties"]["Auth"].pop("InvokeRole")

    def function_url(t):
        function_props(t)["FunctionUrlConfig"] = {"AuthType": "NONE"}

    for change in (no_default_authorizer, event_without_auth, caller_credentials, function_url):
        assert route_problems(broken(template, change)), change.__name__


def test_checks_catch_a_buffered_route(template):
    # "STREAM" is the integration's value, not SAM's: SAM passes it through and builds a buffered
    # integration, which this check (and only this check) notices.
    def sam_stream_typo(t):
        function_props(t)["Events"]["Mcp"]["Properties"]["ResponseTransferMode"] = "STREAM"

    def buffered_health(t):
        function_props(t)["Events"]["Health"]["Properties"].pop("ResponseTransferMode")

    for change in (sam_stream_typo, buffered_health):
        assert route_problems(broken(template, change)), change.__name__
        assert streaming_problems(broken(template, change)), change.__name__
    assert streaming_problems(
        broken(template, lambda t: function_props(t)["Environment"]["Variables"].update(MCP_LAMBDA_RESPONSE_MODE="buffered"))
    )


def test_checks_catch_s3_access_wider_than_the_prefix(template):
    own = {"DataBucketName": "my-data", "DataPrefix": "datasets/"}

    def whole_bucket_objects(t):
        data_statements(t)[1]["Resource"] = {"Fn::Sub": "arn:${AWS::Partition}:s3:::my-data/*"}

    def list_without_condition(t):
        data_statements(t)[0].pop("Condition")

    def unconditional_writes(t):
        data_statements(t)[2] = data_statements(t)[2]["Fn::If"][1]

    def s3_wildcard(t):
        data_statements(t)[1]["Action"] = "s3:*"

    def managed_s3_policy(t):
        t["Resources"]["McpFunctionRole"]["Properties"]["ManagedPolicyArns"].append(
            "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
        )

    def sam_policies(t):
        function_props(t)["Policies"] = ["AmazonS3ReadOnlyAccess"]

    for change in (whole_bucket_objects, list_without_condition, unconditional_writes, s3_wildcard, managed_s3_policy, sam_policies):
        assert s3_problems(broken(template, change), **own), change.__name__
