"""A CAS proxy callback over HTTPS, for the tests: every GET's path and query is
appended to a log file; paths under /pgt answer 200, any other 404.

Usage: https_callback.py PORT CERT KEY LOG
"""
import http.server
import ssl
import sys

port, cert, key, log = sys.argv[1:5]


class Callback(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(log, "a", encoding="utf-8") as out:
            out.write(self.path + "\n")
        status = 200 if self.path.startswith("/pgt") else 404
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", int(port)), Callback)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
