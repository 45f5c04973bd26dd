"""A LocalStack Lambda runtime executor that runs each Node.js execution environment as a host child
process instead of a Docker container.

LocalStack community ships only a Docker executor, and this machine kind has no Docker engine. This
plugin plays the part of the container and its runtime-init: it starts ``bootstrap.mjs`` with the
function's deployed environment, which speaks LocalStack's internal executor-endpoint protocol
(``POST /invoke`` in; ``.../status/<id>/ready``, ``.../invocations/<req>/response|error|logs`` out)
and enforces the function's timeout and memory size as Lambda does.

Selected with ``LAMBDA_RUNTIME_EXECUTOR=recipe-host``. The Lambda runtime provides the AWS SDK; here
``RECIPE_LAMBDA_NODE_MODULES`` (the project's ``node_modules``) is linked beside the unzipped code so
that a bundle's external ``@aws-sdk/*`` imports resolve, as they do in the real runtime.
"""

import logging
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from localstack import config
from localstack.services.lambda_.invocation.executor_endpoint import ExecutorEndpoint
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)
from localstack.utils.net import get_free_tcp_port

LOG = logging.getLogger(__name__)
BOOTSTRAP = Path(__file__).with_name("bootstrap.mjs")
HOST = "127.0.0.1"


def _node() -> str:
    node = os.environ.get("RECIPE_LAMBDA_NODE") or shutil.which("node")
    if not node:
        raise LambdaRuntimeException("recipe-host executor: no node binary (set RECIPE_LAMBDA_NODE)")
    return node


class HostProcessExecutor(RuntimeExecutor):
    """One execution environment = one ``node bootstrap.mjs`` process group on a free loopback port."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.port = get_free_tcp_port()
        self.executor_endpoint = ExecutorEndpoint(self.id, container_address=HOST, container_port=self.port)
        self.process: subprocess.Popen | None = None
        self.log_path = Path(tempfile.gettempdir()) / "recipe-host-executor" / f"{self.id}.log"

    def start(self, env_vars: dict[str, str]) -> None:
        runtime = str(self.function_version.config.runtime or "")
        if not runtime.startswith("nodejs"):
            raise LambdaRuntimeException(f"recipe-host executor runs Node.js functions only, not {runtime!r}")
        self.executor_endpoint.start()
        code = self.function_version.config.code.get_unzipped_code_location()
        env = {k: str(v) for k, v in env_vars.items()}
        env.update(
            {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(code),
                "LAMBDA_TASK_ROOT": str(code),
                "RECIPE_EXECUTOR_PORT": str(self.port),
                "RECIPE_EXECUTOR_HOST": HOST,
            }
        )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        LOG.debug("recipe-host: starting %s for %s on port %s", self.id, self.function_version.qualified_arn, self.port)
        self.process = subprocess.Popen(
            [_node(), str(BOOTSTRAP)],
            cwd=str(code),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.executor_endpoint.wait_for_startup()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=10)
        try:
            self.executor_endpoint.shutdown()
        except Exception as e:  # the endpoint may never have registered
            LOG.debug("recipe-host: stopping endpoint of %s: %s", self.id, e)

    def get_address(self) -> str:
        return HOST

    def get_endpoint_from_executor(self) -> str:
        return HOST

    def get_runtime_endpoint(self) -> str:
        port = config.GATEWAY_LISTEN[0].port
        return f"http://{HOST}:{port}{self.executor_endpoint.get_endpoint_prefix()}"

    def invoke(self, payload: dict[str, str]):
        return self.executor_endpoint.invoke(payload)

    def get_logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        code = function_version.config.code
        if not code:
            raise LambdaRuntimeException("recipe-host executor: container-image functions are not supported")
        code.prepare_for_execution()
        modules = os.environ.get("RECIPE_LAMBDA_NODE_MODULES")
        if modules:
            link = code.get_unzipped_code_location().parent / "node_modules"
            if not link.exists():
                link.symlink_to(modules, target_is_directory=True)

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        return shutil.which(os.environ.get("RECIPE_LAMBDA_NODE") or "node") is not None


class HostExecutorPlugin(RuntimeExecutorPlugin):
    name = "recipe-host"

    def load(self, *args, **kwargs):
        return HostProcessExecutor
