"""datatrove's MinHash deduplication (4 stages, LocalPipelineExecutor) over the dedup bench's questions.

Run by `npm run bench -- dedup --peer datatrove` inside the virtual environment the bench creates.
Reads JSON lines {"id": "q<i>", "text": ...} from --input (one file per task), runs datatrove's own
pipeline steps with the settings given, and prints one JSON object: per-stage seconds and, for every
document datatrove removed, [removed position, position of the member its cluster keeps].
"""

import argparse
import gzip
import json
import os
import time

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import (
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers.jsonl import JsonlWriter
from datatrove.utils.word_tokenizers import WordTokenizer


class SpaceTokenizer(WordTokenizer):
    """Words split on whitespace: the bench's questions are space-separated words already."""

    def word_tokenize(self, text):
        return text.split()

    def sent_tokenize(self, text):
        return [text]

    def span_tokenize(self, text):
        return [(0, len(text))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--tasks", type=int, required=True)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--n-grams", type=int, default=2)
    ap.add_argument("--buckets", type=int, default=32)
    ap.add_argument("--hashes-per-bucket", type=int, default=4)
    ap.add_argument("--tokenizer", choices=["spacy", "space"], default="spacy")
    args = ap.parse_args()

    config = MinhashConfig(n_grams=args.n_grams, num_buckets=args.buckets, hashes_per_bucket=args.hashes_per_bucket)
    language = "en" if args.tokenizer == "spacy" else SpaceTokenizer()
    w = args.work
    logs = os.path.join(w, "logs")
    stages = [
        (
            "signatures",
            [
                JsonlReader(args.input),
                MinhashDedupSignature(output_folder=f"{w}/sigs", config=config, language=language),
            ],
            args.tasks,
        ),
        (
            "buckets",
            [MinhashDedupBuckets(input_folder=f"{w}/sigs", output_folder=f"{w}/buckets", config=config)],
            config.num_buckets,
        ),
        (
            "cluster",
            [
                MinhashDedupCluster(
                    input_folder=f"{w}/buckets", output_folder=f"{w}/remove", config=config, save_cluster_id=True
                )
            ],
            1,
        ),
        (
            "filter",
            [
                JsonlReader(args.input),
                MinhashDedupFilter(
                    input_folder=f"{w}/remove",
                    exclusion_writer=JsonlWriter(f"{w}/removed"),
                    load_cluster_ids=True,
                ),
                JsonlWriter(f"{w}/kept"),
            ],
            args.tasks,
        ),
    ]
    seconds = {}
    for name, pipeline, tasks in stages:
        t0 = time.perf_counter()
        LocalPipelineExecutor(
            pipeline=pipeline,
            tasks=tasks,
            workers=min(args.workers, tasks),
            logging_dir=f"{logs}/{name}",
            start_method="fork",
        ).run()
        seconds[name] = time.perf_counter() - t0

    # The member each cluster keeps, then every removed member mapped to it.
    def docs(folder):
        for name in sorted(os.listdir(folder)):
            with gzip.open(os.path.join(folder, name), "rt") as f:
                for line in f:
                    d = json.loads(line)
                    yield int(d["id"][1:]), d["metadata"].get("minhash_cluster_id", -1)

    kept = {c: i for i, c in docs(f"{w}/kept") if c != -1}
    drops = [[i, kept.get(c, -1)] for i, c in docs(f"{w}/removed")]
    print(json.dumps({"seconds": seconds, "drops": drops}))


if __name__ == "__main__":
    main()
