"""sim_pull_rollout_test.py - fota-sim's Arduino-core fleets rolled out by the real fotad
(pullfleet.py): 100 ESPhttpUpdate sketches from 1.0.0 to 2.0.0 within a window of 10, and 20
Tasmota devices over Debian's mosquitto triggered by one rollout (window 5), each through the
-minimal two-step; every device upgraded, none failed. bench/pullwave.py runs the issue's
sizes (1,000 and 200)."""
from fotatest import run_tests
import pullfleet


def test_arduino_rollout():
    pullfleet.arduino_wave(100, 10)


def test_tasmota_rollout():
    pullfleet.tasmota_wave(20, 5)


run_tests([test_arduino_rollout, test_tasmota_rollout])
