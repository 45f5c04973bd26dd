"""The SFT and RL Parquet outputs load with `datasets` and `pyarrow`, in verl's schema exactly."""
import gzip
import json
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import Dataset

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def datasets_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    subprocess.run(
        ["node", "--import", "tsx", "tests/python/make_datasets.ts", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env={"PATH": __import__("os").environ["PATH"], "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED": "true"},
    )
    return out / "runs" / "py" / "datasets"


def test_rl_parquet_has_verls_columns_and_types(datasets_dir: Path):
    files = sorted((datasets_dir / "rl").glob("*.parquet"))
    assert files, "no RL parquet written"
    table = pq.read_table(files[0])

    schema = table.schema
    assert schema.names == ["data_source", "prompt", "images", "ability", "reward_model", "extra_info", "avg_reward"]
    assert schema.field("data_source").type == pa.string()
    assert schema.field("prompt").type == pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    assert schema.field("images").type == pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    assert schema.field("ability").type == pa.string()
    assert schema.field("reward_model").type == pa.struct([("style", pa.string()), ("ground_truth", pa.string())])
    extra = schema.field("extra_info").type
    assert extra.field("index").type == pa.int64()
    assert extra.field("answer_type").type == pa.string()
    assert extra.field("choices").type == pa.list_(pa.string())
    assert extra.field("question_id").type == pa.string()
    # The release's offline pass rate column (SOURCES.md): a float in [0, 1], inside the pass-rate band.
    assert schema.field("avg_reward").type == pa.float64()

    rows = table.to_pylist()
    assert [r["extra_info"]["index"] for r in rows] == list(range(len(rows)))
    for r in rows:
        assert r["reward_model"]["style"] == "rule"
        assert r["reward_model"]["ground_truth"]
        assert 0 < r["avg_reward"] < 1
        assert [m["role"] for m in r["prompt"]] == ["system", "user"]
        assert r["prompt"][1]["content"].count("<image>") == len(r["images"])
        for img in r["images"]:
            assert img["bytes"].startswith(PNG_MAGIC)


def test_rl_parquet_loads_with_datasets(datasets_dir: Path):
    files = [str(p) for p in sorted((datasets_dir / "rl").glob("*.parquet"))]
    ds = Dataset.from_parquet(files)

    assert len(ds) > 0
    assert set(ds.column_names) == {
        "data_source",
        "prompt",
        "images",
        "ability",
        "reward_model",
        "extra_info",
        "avg_reward",
    }
    assert ds[0]["reward_model"]["style"] == "rule"


def test_sft_parquet_matches_the_jsonl_and_embeds_images(datasets_dir: Path):
    files = [str(p) for p in sorted((datasets_dir / "sft").glob("*.parquet"))]
    ds = Dataset.from_parquet(files)
    with gzip.open(datasets_dir / "sft" / "sft.jsonl.gz", "rt") as f:
        jsonl = [json.loads(line) for line in f]

    assert len(ds) == len(jsonl) > 0
    assert ds.features["messages"].feature["role"].dtype == "string"
    for row, line in zip(ds, jsonl):
        assert row["id"] == line["id"]
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
        assert row["messages"] == line["messages"]
        assert [i["path"] for i in row["images"]] == line["images"]
        for img in row["images"]:
            assert img["bytes"].startswith(PNG_MAGIC)
            assert (datasets_dir / "sft" / img["path"]).read_bytes() == img["bytes"]


def test_text_only_rows_get_the_blank_placeholder_image(datasets_dir: Path):
    with gzip.open(datasets_dir / "sft" / "sft.jsonl.gz", "rt") as f:
        rows = [json.loads(line) for line in f]

    text_math = [r for r in rows if r["domain"] == "text_math"]
    assert text_math
    assert all(r["images"] == ["images/blank.png"] for r in text_math)
    assert all(r["messages"][1]["content"].startswith("<image>") for r in text_math)


LMMS_MESSAGES = pa.list_(
    pa.struct(
        [
            ("role", pa.string()),
            (
                "content",
                pa.list_(
                    pa.struct(
                        [
                            ("type", pa.string()),
                            ("text", pa.string()),
                            ("image_url", pa.struct([("url", pa.string())])),
                        ]
                    )
                ),
            ),
        ]
    )
)


def test_lmms_engine_layout_has_the_sft_874k_schema_and_resolves_every_image(datasets_dir: Path):
    """SOURCES.md 0a: `id` + `messages: list<{role, content: list<{type, text?, image_url?{url}}>}>`,
    image URLs relative to the loader's data_folder (here, the dataset folder)."""
    data_folder = datasets_dir / "sft"
    files = sorted((data_folder / "lmms-engine").glob("*.parquet"))
    assert files
    table = pa.concat_tables([pq.read_table(f) for f in files])
    assert table.schema.field("id").type == pa.string()
    # Compare types structurally (pyarrow names list items "element" or "item"; the types are equal).
    assert table.schema.field("messages").type.equals(LMMS_MESSAGES, check_metadata=False)

    ds = Dataset.from_parquet([str(f) for f in files])
    with gzip.open(data_folder / "sft.jsonl.gz", "rt") as f:
        jsonl = {r["id"]: r for r in (json.loads(line) for line in f)}
    assert len(ds) == len(jsonl) > 0
    for row in ds:
        line = jsonl[row["id"]]
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
        user = row["messages"][1]["content"]
        urls = [c["image_url"]["url"] for c in user if c["type"] == "image_url"]
        assert urls == line["images"]
        for url in urls:
            assert (data_folder / url).is_file()  # os.path.join(data_folder, url), as lmms-engine loads it
        texts = [c["text"] for c in user if c["type"] == "text"]
        assert texts == [line["messages"][1]["content"].replace("<image>", "")]
        assert row["messages"][2]["content"] == [{"type": "text", "text": line["messages"][2]["content"], "image_url": None}]
