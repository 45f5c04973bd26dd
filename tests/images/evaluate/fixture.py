"""A small benchmark in MathVista testmini's schema (AI4Math/MathVista's columns, as lmms-eval's own
mathvista task reads them): a few rows and images made here, written as a Hugging Face Parquet split
`testmini` under `<dir>/recipe_mathvista_testmini/`, the layout the evaluate launcher's
RECIPE_EVAL_DATASETS points lmms-eval at. Run it with the evaluate image's CPU environment:

    $(bash tests/images/venv.sh evaluate) tests/images/evaluate/fixture.py <dir>
"""

from __future__ import annotations

import sys
from pathlib import Path

import datasets
from PIL import Image, ImageDraw

TASK = "recipe_mathvista_testmini"

# MathVista testmini's columns (AI4Math/MathVista), as lmms-eval's own mathvista task reads them.
ROWS = [
    dict(pid="1", question="What is 2 + 3?", choices=None, answer="5", question_type="free_form", answer_type="integer"),
    dict(
        pid="2",
        question="Which shape is red?",
        choices=["circle", "square", "triangle"],
        answer="square",
        question_type="multi_choice",
        answer_type="text",
    ),
    dict(pid="3", question="How many dots are there?", choices=None, answer="7", question_type="free_form", answer_type="integer"),
    dict(pid="4", question="Which bar is taller?", choices=None, answer="the left one", question_type="free_form", answer_type="text"),
]

def make_dataset(root: Path) -> Path:
    folder = root / TASK
    (folder / "data").mkdir(parents=True)
    images = []
    for i, _ in enumerate(ROWS):
        img = Image.new("RGB", (64 + 8 * i, 48), (255, 255, 255))
        ImageDraw.Draw(img).rectangle([4, 4, 30, 30], fill=(200, 20 * i, 20))
        images.append(img)
    features = datasets.Features(
        {
            "pid": datasets.Value("string"),
            "question": datasets.Value("string"),
            "image": datasets.Value("string"),
            "decoded_image": datasets.Image(),
            "choices": datasets.Sequence(datasets.Value("string")),
            "unit": datasets.Value("string"),
            "precision": datasets.Value("float64"),
            "answer": datasets.Value("string"),
            "question_type": datasets.Value("string"),
            "answer_type": datasets.Value("string"),
            "metadata": {
                "category": datasets.Value("string"),
                "context": datasets.Value("string"),
                "grade": datasets.Value("string"),
                "img_height": datasets.Value("int64"),
                "img_width": datasets.Value("int64"),
                "language": datasets.Value("string"),
                "skills": datasets.Sequence(datasets.Value("string")),
                "source": datasets.Value("string"),
                "split": datasets.Value("string"),
                "task": datasets.Value("string"),
            },
            "query": datasets.Value("string"),
        }
    )
    columns: dict[str, list] = {k: [] for k in features}
    for row, img in zip(ROWS, images):
        columns["pid"].append(row["pid"])
        columns["question"].append(row["question"])
        columns["image"].append(f"images/{row['pid']}.jpg")
        columns["decoded_image"].append(img)
        columns["choices"].append(row["choices"])
        columns["unit"].append(None)
        columns["precision"].append(None)
        columns["answer"].append(row["answer"])
        columns["question_type"].append(row["question_type"])
        columns["answer_type"].append(row["answer_type"])
        columns["metadata"].append(
            dict(category="math-targeted-vqa", context="synthetic scene", grade="elementary school",
                 img_height=img.height, img_width=img.width, language="english", skills=["arithmetic reasoning"],
                 source="recipe-pipeline test", split="testmini", task="figure question answering")
        )
        columns["query"].append(row["question"])
    datasets.Dataset.from_dict(columns, features=features).to_parquet(str(folder / "data" / "testmini-00000-of-00001.parquet"))
    return root


if __name__ == "__main__":
    print(make_dataset(Path(sys.argv[1])))
