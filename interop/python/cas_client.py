"""python-cas (PyPI, 1.7.2), an independent CAS client, as a service would use
it against Guichet. Prints one JSON document.

  cas_client.py validate SERVER_URL SERVICE_URL TICKET
      CAS 3.0 validation (p3/serviceValidate): {"user", "attributes", "pgtiou"}
  cas_client.py logout TICKET < LOGOUT_REQUEST
      single logout: {"accepted": whether the message names TICKET}
"""
import json
import sys

from cas import CASClient, CASClientV3


def validate(server_url, service_url, ticket):
    client = CASClient(version=3, service_url=service_url, server_url=server_url)
    user, attributes, pgtiou = client.verify_ticket(ticket)
    return {"user": user, "attributes": attributes, "pgtiou": pgtiou}


def logout(ticket):
    message = sys.stdin.read()
    return {"accepted": CASClientV3.verify_logout_request(message, ticket)}


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    answer = validate(*args) if mode == "validate" else logout(*args)
    print(json.dumps(answer))
