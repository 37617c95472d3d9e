# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DURATION ?= 45
# Each run gets its own DDS domain, and discovery stays on this machine.
export ROS_DOMAIN_ID ?= $(shell echo $$(( $$$$ % 100 + 100 )))
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export PYTHONUNBUFFERED := 1

.PHONY: demo test lint bench venv clean

venv: $(STAMP)

$(STAMP): requirements.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 \
		| grep -v "is ignored: it is neither" || true
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e . 2>&1 \
		| grep -v "is ignored: it is neither" || true
	$(BIN)/python -c "import rclpy, pybullet, cv2, rosbags, perception_nodes"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/perception demo --duration $(DURATION) --out runs

test: $(STAMP)
	$(BIN)/ruff check perception_nodes test launch setup.py
	$(BIN)/python -m pytest -q test

bench: $(STAMP)
	$(BIN)/perception bench --json

clean:
	rm -rf $(VENV) runs *.egg-info
