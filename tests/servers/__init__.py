"""Real HTTP test servers on 127.0.0.1 with fault injection and request logs.

- `files.FileServer`: a Range-capable static server for a directory (plain HTTP remotes).
- `hub.FakeHub`: the Hugging Face Hub endpoints huggingface_hub uses (info, tree, resolve, commits).
- `s3.MotoS3`: moto's S3 server behind a fault-injecting proxy (boto3 over HTTP).
- `proxy.FaultProxy`: that proxy, for any store whose server is not ours (the GCS and Azure emulators).
Fixtures wrapping them live in tests/conftest.py.
"""

from tests.servers.faults import Fault, Faults, Request, RequestLog
from tests.servers.files import FileServer
from tests.servers.hub import FakeHub

__all__ = ["Fault", "Faults", "FakeHub", "FileServer", "Request", "RequestLog"]
