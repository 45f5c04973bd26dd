"""Extracts, from a released vLLM wheel, the `vllm serve` flags and the choices the generate image's
serving plan relies on, into tests/fixtures/vllm-<version>-args.json (checked by
tests/unit/vllm-args.test.ts). The wheel is 440 MB, so CI reads this fixture rather than the wheel.

Usage: pip download --no-deps vllm==0.11.0 && python3 tests/python/extract_vllm_args.py vllm-0.11.0-*.whl
"""

import ast
import hashlib
import json
import re
import sys
import zipfile
from pathlib import Path


def literal_choices(source: str, name: str) -> list[str]:
    m = re.search(rf"^{name} = Literal\[(.*?)\]", source, re.M)
    assert m, f"{name} not found"
    return [v.strip().strip('"') for v in m.group(1).split(",")]


def dataclass_fields(source: str, cls: str) -> list[str]:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == cls:
            return [n.target.id for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]
    raise AssertionError(f"class {cls} not found")


def main(wheel: str) -> None:
    version = re.search(r"vllm-([0-9.]+)-", Path(wheel).name).group(1)
    with zipfile.ZipFile(wheel) as z:
        read = lambda p: z.read(p).decode()  # noqa: E731
        engine = read("vllm/engine/arg_utils.py")
        frontend = read("vllm/entrypoints/openai/cli_args.py")
        multimodal = read("vllm/config/multimodal.py")
    flags = set(re.findall(r'"(--[a-z0-9][a-z0-9-]*)"', engine))
    flags |= {"--" + f.replace("_", "-") for f in dataclass_fields(frontend, "FrontendArgs")}
    out = {
        "vllm": version,
        "wheel_sha256": hashlib.sha256(Path(wheel).read_bytes()).hexdigest(),
        "flags": sorted(flags),
        "choices": {
            "--mm-encoder-tp-mode": literal_choices(multimodal, "MMEncoderTPMode"),
            "--mm-processor-cache-type": literal_choices(multimodal, "MMCacheType"),
        },
    }
    target = Path(__file__).resolve().parents[1] / "fixtures" / f"vllm-{version}-args.json"
    target.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {target}: {len(flags)} flags")


if __name__ == "__main__":
    main(sys.argv[1])
