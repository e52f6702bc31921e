"""python -m devstack.dynamodb --port 8003 --table NAME: DynamoDB for the dev stack.

moto's server (a real HTTP endpoint speaking DynamoDB's JSON 1.0) with the limits table made as
`connect` makes it (triggers/limits_table.py). Runs until SIGTERM or SIGINT."""
import argparse
import logging
import signal
import sys
import threading


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m devstack.dynamodb", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8003)
    parser.add_argument("--table", required=True)
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args(argv)

    import boto3
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    from triggers.limits_table import ensure_table

    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: stopped.set())
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request: /auth/start makes four
    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    url = f"http://{args.host}:{args.port}"
    # moto accepts any key; a real one never needs to reach it.
    dynamodb = boto3.client("dynamodb", endpoint_url=url, region_name=args.region,
                            aws_access_key_id="devstack", aws_secret_access_key="devstack")
    for change in ensure_table(dynamodb, args.table):
        print(change, flush=True)
    print(f"READY dynamodb={url} table={args.table}", flush=True)
    stopped.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
