"""The `file` and `file_write` tools against a local folder and against a real S3 API server on
127.0.0.1 (moto), through `mcp-gateway serve` and the Python MCP client."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import anyio
import boto3
import pytest
from mcp.client.client import Client

from conftest import DATA, Moto, Server

BUCKET = "gateway-data"
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
          "AWS_EC2_METADATA_DISABLED": "true"}
MANY = 1205  # more than one ListObjectsV2 page
LATIN1 = "café crème\n".encode("latin-1")  # not UTF-8


def s3_server(tmp: Path, moto: tuple, root: Path, prefix: str, files: list[Path] | None = None) -> Server:
    """Uploads `files` (every file under `root` by default) to s3://BUCKET/<prefix>/<path under
    root> and serves that prefix, with the S3 cache under `tmp`."""
    endpoint, s3 = moto
    for path in files if files is not None else [path for path in root.rglob("*") if path.is_file()]:
        s3.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(root).as_posix()}")
    return Server(tmp, data_root=f"s3://{BUCKET}/{prefix}/", env={**S3_ENV, "AWS_ENDPOINT_URL": endpoint,
                                                                   "MCP_CACHE_DIR": str(tmp / "cache")})


def local_or_s3_server(request, tmp_path_factory, root: Path, prefix: str, files: list[Path] | None = None) -> Server:
    """For a fixture parametrized with "local" and "s3": a server over `root` itself, or over an S3
    copy of it (`s3_server`) in the module's moto."""
    tmp = tmp_path_factory.mktemp(f"{prefix}-{request.param}")
    if request.param == "local":
        return Server(tmp, data_root=str(root))
    return s3_server(tmp, request.getfixturevalue("moto"), root, prefix, files)


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = Moto(tmp_path_factory.mktemp("moto") / "moto.log")
    endpoint = server.endpoint
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    for path in DATA.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), BUCKET, f"data/{path.relative_to(DATA).as_posix()}")
    for i in range(MANY):
        s3.put_object(Bucket=BUCKET, Key=f"data/many/item-{i:05d}.txt", Body=f"item {i}\n".encode())
    s3.put_object(Bucket=BUCKET, Key="data/odd/latin1.txt", Body=LATIN1)
    yield endpoint, s3
    server.stop()


@pytest.fixture(scope="module")
def local_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("local-root")
    shutil.copytree(DATA, root, dirs_exist_ok=True)
    (root / "odd").mkdir()
    (root / "odd" / "latin1.txt").write_bytes(LATIN1)
    (root / "many").mkdir()
    for i in range(MANY):
        (root / "many" / f"item-{i:05d}.txt").write_text(f"item {i}\n")
    return root


@pytest.fixture(scope="module", params=["local", "s3"])
def root(request, tmp_path_factory, local_root):
    """A writable gateway over a local copy of examples/data or over the same files in S3."""
    tmp = tmp_path_factory.mktemp(f"gateway-{request.param}")
    if request.param == "local":
        server = Server(tmp, "--allow-write", data_root=str(local_root))
    else:
        endpoint, _ = request.getfixturevalue("moto")
        server = Server(tmp, "--allow-write", data_root=f"s3://{BUCKET}/data/", env={**S3_ENV, "AWS_ENDPOINT_URL": endpoint})
    yield request.param, server
    server.stop()


def data_files() -> set[str]:
    """The sample files the listing's glob (`**/*.{csv,md,ndjson}`) matches."""
    return {p.relative_to(DATA).as_posix() for p in DATA.rglob("*") if p.is_file() and p.suffix in {".csv", ".md", ".ndjson"}}


@pytest.mark.anyio
async def test_list_read_info(root):
    kind, server = root
    async with Client(server.url, mode="2026-07-28") as client:
        listed = await client.call_tool("file", {"action": "list", "recursive": True, "glob": "**/*.{csv,md,ndjson}", "limit": 1000})
        assert listed.is_error is False, listed.content
        paths = {e["path"] for e in listed.structured_content["entries"] if e["kind"] == "file"}
        assert paths == data_files(), kind
        raw = await client.call_tool("file", {"action": "read", "path": "odd/latin1.txt"})
        assert base64.b64decode(raw.structured_content["base64"]) == LATIN1, "non-UTF-8 bytes come back intact"
        info = await client.call_tool("file", {"action": "info", "path": "sales/orders.csv"})
        entry = info.structured_content["info"]
        assert entry["size"] == (DATA / "sales/orders.csv").stat().st_size and entry["content_type"] == "text/csv"
        assert entry["etag"] and entry["modified"]
        lines = await client.call_tool("file", {"action": "read", "path": "sales/orders.csv", "start_line": 2, "end_line": 3})
        expected = "".join((DATA / "sales/orders.csv").read_text().splitlines(keepends=True)[1:3])
        assert lines.structured_content["text"] == expected
        assert lines.structured_content["line_range"] == [2, 3]
        part = await client.call_tool("file", {"action": "read", "path": "sales/regions.csv", "offset": 5, "length": 10})
        assert part.structured_content["text"] == (DATA / "sales/regions.csv").read_bytes()[5:15].decode()


@pytest.mark.anyio
async def test_listing_paginates_past_a_thousand_objects(root):
    kind, server = root
    seen: list[str] = []
    cursor = None
    pages = 0
    async with Client(server.url, mode="legacy") as client:
        while True:
            args = {"action": "list", "path": "many", "limit": 500}
            if cursor:
                args["cursor"] = cursor
            page = await client.call_tool("file", args)
            assert page.is_error is False, page.content
            seen += [e["path"] for e in page.structured_content["entries"]]
            pages += 1
            cursor = page.structured_content.get("next_cursor")
            if not cursor:
                break
    assert pages == 3
    assert seen == [f"many/item-{i:05d}.txt" for i in range(MANY)], kind


@pytest.mark.anyio
async def test_write_replace_delete(root):
    kind, server = root
    async with Client(server.url, mode="2026-07-28") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["file_write"].annotations.destructive_hint is True
        assert tools["file_write"].annotations.read_only_hint is False
        assert tools["file"].annotations.read_only_hint is True
        wrote = await client.call_tool("file_write", {"action": "write", "path": "out/notes/hello.txt", "text": "héllo\n"})
        assert wrote.is_error is False, wrote.content
        assert wrote.structured_content["entry"]["size"] == len("héllo\n".encode())
        back = await client.call_tool("file", {"action": "read", "path": "out/notes/hello.txt"})
        assert back.structured_content["text"] == "héllo\n"
        blob = bytes(range(256))
        await client.call_tool("file_write", {"action": "write", "path": "out/blob.bin", "base64": base64.b64encode(blob).decode()})
        binary = await client.call_tool("file", {"action": "read", "path": "out/blob.bin"})
        assert base64.b64decode(binary.structured_content["base64"]) == blob
        gone = await client.call_tool("file_write", {"action": "delete", "path": "out/blob.bin"})
        assert gone.is_error is False
        missing = await client.call_tool("file", {"action": "info", "path": "out/blob.bin"})
        assert missing.is_error is True and "does not exist" in missing.content[0].text
        escape = await client.call_tool("file_write", {"action": "write", "path": "../escape.txt", "text": "x"})
        assert escape.is_error is True and "cannot leave the data root" in escape.content[0].text
        await client.call_tool("file_write", {"action": "delete", "path": "out/notes/hello.txt"})


@pytest.mark.anyio
async def test_concurrent_writes_to_one_path_are_atomic_and_leave_no_temporary_files(root, local_root):
    """Regression: this test used to look only for temporary files that other tests had left, so it
    passed whether or not writes were atomic. Now 12 writers replace one file at once while readers
    read it: every read sees one writer's whole content, the file ends as one of them, and no
    temporary file is left."""
    kind, server = root
    path = "out/race.txt"
    bodies = [chr(ord("a") + i) * 150_000 for i in range(12)]
    reads: list[str] = []
    async with Client(server.url, mode="2026-07-28") as client:
        first = await client.call_tool("file_write", {"action": "write", "path": path, "text": bodies[0]})
        assert first.is_error is False, first.content

        async def write(body: str) -> None:
            wrote = await client.call_tool("file_write", {"action": "write", "path": path, "text": body})
            assert wrote.is_error is False, wrote.content

        async def read() -> None:
            for _ in range(8):
                got = await client.call_tool("file", {"action": "read", "path": path})
                assert got.is_error is False, got.content
                reads.append(got.structured_content["text"])
                if kind == "local":
                    reads.append(await anyio.to_thread.run_sync((local_root / path).read_text))

        async with anyio.create_task_group() as group:
            for body in bodies:
                group.start_soon(write, body)
            for _ in range(3):
                group.start_soon(read)
        final = await client.call_tool("file", {"action": "read", "path": path})
        await client.call_tool("file_write", {"action": "delete", "path": path})
    assert len(reads) >= 24
    torn = [text[:20] + "…" for text in reads if text not in bodies]
    assert torn == [], f"{kind}: reads saw partial or mixed content"
    assert final.structured_content["text"] in bodies
    if kind == "local":
        assert [p.name for p in local_root.rglob("*") if ".tmp-" in p.name] == []


@pytest.mark.anyio
async def test_writes_are_absent_without_allow_write(tmp_path):
    server = Server(tmp_path)
    try:
        async with Client(server.url, mode="legacy") as client:
            names = [t.name for t in (await client.list_tools()).tools]
            assert "file_write" not in names
            with pytest.raises(Exception, match="unknown tool `file_write`"):
                await client.call_tool("file_write", {"action": "delete", "path": "sales/orders.csv"})
        assert (DATA / "sales/orders.csv").exists()
    finally:
        server.stop()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"action": "read", "path": "../../etc/passwd"}, "cannot leave the data root"),
        ({"action": "read", "path": "/etc/passwd"}, "is absolute"),
        ({"action": "read", "path": "%2e%2e/secret"}, "percent-encoded"),
        ({"action": "read", "path": "nope/missing.csv"}, "does not exist"),
        ({"action": "list", "glob": "a/[b"}, "invalid glob"),
        ({"action": "read", "path": "sales/orders.csv", "offset": 0, "length": 10**12}, "larger than the read limit"),
        ({"action": "read", "path": "sales", "start_line": 1}, "is a folder"),
        ({"action": "list", "cursor": "bogus"}, "invalid cursor"),
        ({"action": "read", "path": "odd/latin1.txt", "start_line": 1}, "is not UTF-8 text"),
    ],
    ids=["traversal", "absolute", "encoded", "missing", "glob", "huge-range", "folder", "cursor", "non-utf8"],
)
async def test_bad_input_is_a_clear_tool_error(root, args, message):
    kind, server = root
    async with Client(server.url, mode="legacy") as client:
        result = await client.call_tool("file", args)
    assert result.is_error is True, (kind, result)
    assert message in result.content[0].text, (kind, result.content[0].text)


@pytest.mark.anyio
async def test_missing_bucket_is_explained(moto, tmp_path):
    endpoint, _ = moto
    server = Server(tmp_path, data_root="s3://no-such-bucket-here/x/", env={**S3_ENV, "AWS_ENDPOINT_URL": endpoint})
    try:
        async with Client(server.url, mode="legacy") as client:
            result = await client.call_tool("file", {"action": "list"})
        assert result.is_error is True
        assert "bucket of the data root does not exist" in result.content[0].text
    finally:
        server.stop()


@pytest.fixture
def moto_with_iam(tmp_path):
    """A moto server enforcing IAM, with a user who may list the bucket but not read objects."""
    server = Moto(tmp_path / "moto-iam.log")
    endpoint = server.endpoint
    try:
        admin = {"endpoint_url": endpoint, "aws_access_key_id": "testing", "aws_secret_access_key": "testing",
                 "region_name": "us-east-1"}
        s3 = boto3.client("s3", **admin)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="data/secret.csv", Body=b"a,b\n1,2\n")
        iam = boto3.client("iam", **admin)
        iam.create_user(UserName="lister")
        iam.put_user_policy(UserName="lister", PolicyName="list-only", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}"}],
        }))
        key = iam.create_access_key(UserName="lister")["AccessKey"]
        # From here on every S3 call is authenticated and authorized against IAM.
        server.enforce_iam()
        yield endpoint, key["AccessKeyId"], key["SecretAccessKey"]
    finally:
        server.stop()


@pytest.mark.anyio
async def test_s3_access_denied_is_explained(moto_with_iam, tmp_path):
    endpoint, key_id, secret = moto_with_iam
    env = {**S3_ENV, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret}
    server = Server(tmp_path, data_root=f"s3://{BUCKET}/data/", env=env)
    try:
        async with Client(server.url, mode="legacy") as client:
            listing = await client.call_tool("file", {"action": "list"})
            assert listing.is_error is False, listing
            assert "secret.csv" in listing.content[0].text
            for args in ({"action": "read", "path": "secret.csv"}, {"action": "info", "path": "secret.csv"}):
                result = await client.call_tool("file", args)
                assert result.is_error is True, (args, result)
                text = result.content[0].text
                assert "access to `secret.csv` was denied" in text and "s3:GetObject" in text, (args, text)
            metadata = await client.call_tool("dataset_metadata", {"path": "secret.csv"})
            assert metadata.is_error is True and "denied" in metadata.content[0].text, metadata
    finally:
        server.stop()
