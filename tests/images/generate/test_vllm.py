"""vLLM 0.11.0's own code, on CPU, over what the generate image sends it: the exact `vllm serve`
arguments entrypoint.sh runs for the published config's teacher and policy, through vLLM's own serve
parser (the `vllm serve` subcommand, make_arg_parser, validate_parsed_serve_args) into
AsyncEngineArgs.from_cli_args; and every chat request the worker sent, through vLLM's own
ChatCompletionRequest model, its sampling parameters and its image loader (data URLs)."""

from __future__ import annotations

import functools
import json

import pytest
import vllm.platforms
from vllm.platforms.cpu import CpuPlatform

# No GPU here, and PyPI's vLLM wheel is the CUDA build, so vLLM detects no platform and cannot even
# build its argument defaults (DeviceConfig). Its own CPU platform stands in for CUDA's: the parser,
# the validation and the engine arguments are the same code.
if vllm.platforms._current_platform is None:
    vllm.platforms._current_platform = CpuPlatform()

from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.entrypoints.cli.serve import ServeSubcommand
from vllm.entrypoints.openai.protocol import ChatCompletionRequest
from vllm.multimodal.utils import MediaConnector
from vllm.utils import FlexibleArgumentParser


@functools.cache
def serve_parser():
    """`vllm serve`'s parser, as vLLM's CLI main builds it."""
    parser = FlexibleArgumentParser()
    serve = ServeSubcommand()
    serve.subparser_init(parser.add_subparsers(dest="subparser"))
    return parser, serve


def parse_serve(argv: list[str]):
    """What `vllm serve ...` does with its arguments before it loads anything."""
    parser, serve = serve_parser()
    args = parser.parse_args(argv)
    serve.validate(args)
    args.model = args.model_tag  # ServeSubcommand.cmd: the positional model wins
    return args, AsyncEngineArgs.from_cli_args(args)


@pytest.mark.parametrize("role", ["teacher", "policy"])
def test_the_serve_command_parses_with_vllms_own_parser(outputs, role):
    argv = outputs["serve"][role]
    flag = lambda name: argv[argv.index(name) + 1]  # noqa: E731
    # Offline, vLLM resolves a model id to a local snapshot; serve the model's local folder instead, as
    # entrypoint.sh does with staged weights (teacher.weightsUri, rl.policyWeightsUri).
    local = [argv[0], outputs["meta"][role], *argv[2:]]

    args, engine = parse_serve(local)

    assert argv[0] == "serve" and engine.model == outputs["meta"][role]
    assert args.served_model_name == [argv[1]]
    assert engine.tensor_parallel_size == int(flag("--tensor-parallel-size"))
    assert engine.data_parallel_size == int(flag("--data-parallel-size")) if "--data-parallel-size" in argv else 1
    assert engine.max_model_len == int(flag("--max-model-len"))
    assert engine.limit_mm_per_prompt == json.loads(flag("--limit-mm-per-prompt"))
    assert engine.mm_processor_cache_type == flag("--mm-processor-cache-type")
    assert engine.async_scheduling is True
    if role == "teacher":  # Qwen3-VL-235B-A22B: MoE, vision encoder data-parallel
        assert engine.enable_expert_parallel is True
        assert engine.mm_encoder_tp_mode == "data"


@pytest.mark.parametrize("bad", [["--no-such-flag", "1"], ["--mm-encoder-tp-mode", "replicate"]])
def test_vllms_parser_refuses_a_flag_or_a_choice_it_does_not_define(outputs, bad):
    argv = outputs["serve"]["policy"]
    with pytest.raises(SystemExit):
        parse_serve([argv[0], outputs["meta"]["policy"], *argv[2:], *bad])


def test_every_request_the_worker_sent_is_a_valid_vllm_chat_request(outputs):
    bodies = [json.loads(line) for line in open(outputs["requests"]) if line.strip()]
    assert bodies, "the worker sent no request"
    media = MediaConnector()
    images = 0
    for body in bodies:
        request = ChatCompletionRequest.model_validate(body)
        params = request.to_sampling_params(
            max_tokens=body["max_tokens"], logits_processor_pattern=None, default_sampling_params={}
        )
        assert request.model == outputs["serve"]["teacher"][1]
        assert (params.temperature, params.top_p, params.max_tokens, params.seed) == (
            body["temperature"],
            body["top_p"],
            body["max_tokens"],
            body["seed"],
        )
        for message in body["messages"]:
            if isinstance(message["content"], list):
                for part in message["content"]:
                    if part["type"] == "image_url":
                        image = media.fetch_image(part["image_url"]["url"])
                        assert image.width > 0 and image.height > 0
                        images += 1
    assert images > 0, "no request carried an image"
