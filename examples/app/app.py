"""The example app castoff releases: a tiny HTTP greeting."""
from http.server import BaseHTTPRequestHandler, HTTPServer


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        body = open("/VERSION").read().strip() if self.path == "/version" else "hello"
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body.encode())


if __name__ == "__main__":
    HTTPServer(("", 8080), Hello).serve_forever()
