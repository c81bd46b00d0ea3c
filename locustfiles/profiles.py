"""The load profiles (smoke, load, stress, spike of conf/shapes.yaml) for any locustfile.

locust -f locustfiles/chat.py,locustfiles/profiles.py --load-profile spike [--time-scale 0.05]
Flags: --load-profile/PROFILE, --time-scale/TIME_SCALE, --stages-file/STAGES_FILE (shapes/locust_shapes.py).
"""

from locust import events

from shapes.locust_shapes import install_shapes

install_shapes(globals(), events)
