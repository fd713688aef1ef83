"""What hubext's hub services share.

- :mod:`.app`: :class:`~.app.HubServiceApplication`, the base of the
  services JupyterHub runs for hubext (the culler, the budget enforcer):
  the hub's URL and the service's token, log lines in the hub's shape,
  every record scrubbed of the token;
- :mod:`.client`: :class:`~.client.HubAPI`, the hub's REST API with
  retries, answers scrubbed of the token;
- :mod:`.redact`: the scrubbing of a secret and of every piece of it.

The data a service gets from the hub is :mod:`hubext.service_data`.
"""
