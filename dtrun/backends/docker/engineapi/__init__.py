"""dtrun's own client for the Docker Engine API (issue 19): no docker-py, requests or urllib3 on a run's path.

`transport.py` speaks HTTP/1.1 over the daemon's socket (unix, tcp, tcp+TLS) with a pool of kept-alive
connections; `api.py` is one method per endpoint; `models.py` and `client.py` give the objects and
collections in docker-py's shapes (`client.containers.create(...)`, `container.put_archive(...)`), so the
backend's code reads as before; `frames.py` splits a log stream into the container's writes; `registry.py`
finds registry credentials as the docker CLI does; `errors.py` has the exceptions, with the daemon's status
and message. Importing it costs a few milliseconds (socket, json), against ~90 ms for docker-py; this
file imports nothing, so that `errors` alone (what the backend's modules import up front) stays free.
"""
