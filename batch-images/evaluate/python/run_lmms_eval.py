"""``python run_lmms_eval.py <lmms-eval arguments>``: lmms-eval's own command line, with the evaluate
job's model type (``recipe_openai_compatible``: recipe_eval_model.py) registered first.

lmms-eval 0.5.0's ``cli_evaluate`` logs an exception and returns normally; this exits 1 when it
wrote no results file under ``--output_path``, so a failed benchmark is never taken for a finished one.
"""

import glob
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lmms_eval import models  # noqa: E402

models.AVAILABLE_SIMPLE_MODELS["recipe_openai_compatible"] = "recipe_eval_model.RecipeOpenAICompatible"

from lmms_eval.__main__ import cli_evaluate  # noqa: E402


def main() -> int:
    out = sys.argv[sys.argv.index("--output_path") + 1] if "--output_path" in sys.argv else None
    cli_evaluate()
    if out and not glob.glob(os.path.join(out, "**", "*_results.json"), recursive=True):
        print(f"lmms-eval wrote no results under {out}: the benchmark failed (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
