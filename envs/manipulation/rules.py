"""The Franka tasks' rules, shared by the batched torch tasks and deploy-sim's numpy controller."""

from __future__ import annotations

REACH_TOLERANCE = 0.02  # m: reach succeeds with the grip point within 2 cm of the target
PUSH_TOLERANCE = 0.03  # m: push succeeds with the cube within 3 cm of the goal (in the table's plane)
LIFT_CLEARANCE = 0.05  # m: lift succeeds with the cube this far above its resting height ...
LIFT_HOLD_STEPS = 50  # ... for the last second of the episode (50 control steps)
GRASP_RADIUS = 0.02  # m: a grasp needs the cube's centre this close to the grip point
PUSH_BEHIND = 0.02  # m: push draws the hand to half a cube + this behind the cube, away from the goal
GOAL_X, GOAL_Y = (0.3, 0.75), (-0.35, 0.35)  # m: push goals stay on this part of the table
SOFT_LIMIT = 0.95  # the joint-limit penalty starts at 95% of each joint's half range
FELL_OFF = -0.05  # m: a cube below the table's top has fallen off: the episode ends
GRIPPER_STEP = 0.005  # m per control step per finger at |g| = 1
START_TRIES = 5  # draws of a start pose (each with half the previous noise) before the noiseless one
PENETRATION = 1e-4  # m: a start pose whose contacts go deeper than this touches the table or the cube
