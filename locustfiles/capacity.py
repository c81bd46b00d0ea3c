"""The capacity search for any locustfile: the highest load (Users, or arrivals/s) at which the SLOs still hold.

locust -f locustfiles/workload.py,locustfiles/capacity.py --headless                      # closed model (Users)
locust -f locustfiles/workload.py,locustfiles/capacity.py --headless --workload open --capacity-mode rate
locust -f locustfiles/capacity.py,locustfiles/gateway.py --headless     # put it first where a file has a shape
Settings: conf/capacity.yaml (--capacity-conf/CAPACITY_CONF); SLOs: the suite's --thresholds.
"""

from locust import events

from shapes.capacity_shape import install_capacity

install_capacity(globals(), events)
