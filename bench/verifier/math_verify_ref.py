"""Math-Verify over the same cases, for the side-by-side benchmark.

Reads JSON lines {id, response, answer, extracted?} on stdin; writes {id, correct, seconds} per line
and a final {"summary": ...} line. The prediction given to Math-Verify is the text after the think
block (Math-Verify has no think-block rule of its own); the gold is parsed as LaTeX in math mode.
"""
import json
import sys
import time

from math_verify import parse, verify


def prediction_text(response: str) -> str:
    if "</think>" in response:
        response = response.rsplit("</think>", 1)[1]
    if "<answer>" in response and "</answer>" in response:
        inner = response.rsplit("<answer>", 1)[1].split("</answer>", 1)[0]
        if "\\boxed" not in inner:
            inner = "\\boxed{" + inner.strip() + "}"
        return inner
    return response


def main() -> None:
    total = 0.0
    n = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        case = json.loads(line)
        start = time.perf_counter()
        try:
            gold = parse("$" + case["answer"] + "$")
            pred = parse(prediction_text(case["response"]))
            ok = bool(verify(gold, pred))
        except Exception:  # Math-Verify itself should not raise; count it as a wrong verdict if it does
            ok = False
        spent = time.perf_counter() - start
        total += spent
        n += 1
        print(json.dumps({"id": case["id"], "correct": ok, "seconds": spent}))
    print(json.dumps({"summary": {"items": n, "seconds": total}}))


if __name__ == "__main__":
    main()
