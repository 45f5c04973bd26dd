"""Start LocalStack's runtime in host mode (no Docker), with every byte it writes inside the suite's
state folder. LocalStack's S3 keeps object bodies under a fixed /tmp/localstack-s3-storage whatever
FILESYSTEM_ROOT says; the provider reads that module constant when it is created, so it is pointed
into the state folder first."""

import os
import sys

import localstack.services.s3.provider as s3_provider
from localstack.runtime.main import main

s3_provider.DEFAULT_S3_TMP_DIR = os.path.join(os.environ["FILESYSTEM_ROOT"], "s3-storage")

if __name__ == "__main__":
    sys.argv = ["localstack"]
    main()
