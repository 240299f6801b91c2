"""A fast twin of each sai_mujoco soccer task: the official MjModel/MjData stepped directly by MuJoCo.

sai_mujoco's `env.step` spends most of its time in Python around `mj_step` (name lookups per query,
a Python loop over the contacts, a 25-key info dict built from scratch); docs/fast_simulation.md has
the figures. `FastSoccerEnv` is built on an official env instance and keeps its MjModel and MjData, so
the physics is the official one; only `step` is ours:

* `reset` IS the official env's reset (initial states, their randomisation and seeding unchanged).
* `step(torques)` does what the official step does, in the same order, with every id and address
  looked up once: (Goalie) the keeper's sinusoid written into qpos/qvel, the torques clipped to the
  actuator range into ctrl, one `mj_step` (the official step1 / ctrl / step2 split is the same
  computation), then the reward terms (`compute_reward` semantics: contact counter, the
  `robot_distance_ball` latch after the first touch, goal / offside / blocked), the terminations, the
  info fields and the raw observation, read from the same MjData arrays with the same numpy calls.
  Note the official quirk kept here: after `mj_step` the kinematics (site positions, contacts, sensors)
  are those computed BEFORE the integration, while qpos/qvel are the new state.
* TimeLimit truncation at `max_episode_steps` (5000) is counted here, so the fused
  `step_pd` can stop at it like gymnasium's TimeLimit inside the official ActionRepeat chain.
* `step_pd(targets, k)`: the PD action mode with action repeat fused into one loop: per physics step
  only the PD torques (from float32-rounded q, qd as the official PDAction reads them from the raw
  obs), the keeper, `mj_step`, the contact counter and the termination checks; the observation and
  info are built once, at the end. Its per-physics-step rewards are summed as ActionRepeat does.

Two implementations of the step: this module's Python step (bitwise equal to sai_mujoco: same arrays,
same numpy calls) and, when a C compiler is there, the C step of envs/fastsim_kernel.c (the same computation
without the interpreter; a few norms, tanh and dot products round differently in the last bit). The parity
tests in tests/test_fastsim_parity.py hold every per-step output of both equal to the official env's (floats
within 1e-5; booleans, episode lengths and scores exact); docs/fast_simulation.md has the details.
"""

from __future__ import annotations

import ctypes
from typing import Any

import gymnasium as gym
import numpy as np

from envs.fastsim_native import N_TERMS, N_VECTORS, SENSOR_NAMES, VECTOR_FIELDS, KernelContext, load_kernel, pointer
from envs.tasks import Task, get_task
from envs.wrappers import T1_DEFAULT_POSE, T1_KD, T1_KP

SIMS = ("fast", "official")
"""Simulator choices: our twin of each task, or sai_mujoco's own env."""
MAX_EPISODE_STEPS = 5000
"""The official TimeLimit (10 s at 500 Hz)."""

_GOALIE, _OBSTACLE, _KICK = "goalie_penalty_kick", "obstacle_penalty_kick", "kick_to_target"
_PK_TERMS = ("robot_distance_ball", "ball_vel_twd_goal", "offside", "ball_hits", "robot_fallen", "goal_scored",
             "ball_blocked", "ball_distance_target")
_KTT_TERMS = ("offside", "success", "distance", "robot_distance_ball")
"""The raw terms in sai_mujoco's order, as the C step stores them."""
_ROBOT, _BLOCKER = 1, 2
"""Geom roles in ball contacts."""
_KEEPER_FREQ = 0.3
"""Hz of the goalkeeper's sinusoid (sai_mujoco's move_goalkeeper default)."""


def check_sim(sim: str) -> str:
    """`sim` if it names a simulator; ValueError listing the choices otherwise."""
    if sim not in SIMS:
        raise ValueError(f"unknown sim {sim!r}; choose from {', '.join(SIMS)}")
    return sim


class FastSoccerEnv(gym.Env):
    """The fast twin of one official soccer env (module docstring). Raw torques in, raw obs and info out."""

    def __init__(self, official: gym.Env, task: Task | str, max_episode_steps: int | None = None,
                 native: bool = True) -> None:
        import mujoco  # here, not at the top: importing envs must not import mujoco (MUJOCO_GL is read at import)

        self._mj = mujoco
        self.task = get_task(task) if isinstance(task, str) else task
        self.official = official.unwrapped
        base = self.official
        self.sim = base.sim
        self.model = base.sim.model._model
        self.data = base.sim.data._data
        self.reward_config = dict(type(base).reward_config)
        self.control_timestep = base.control_timestep
        self.model_timestep = base.model_timestep
        self.action_space = base.action_space
        self.observation_space = base.observation_space
        self.render_mode = base.render_mode
        self.metadata = dict(getattr(base, "metadata", {}))
        self.max_episode_steps = MAX_EPISODE_STEPS if max_episode_steps is None else int(max_episode_steps)
        if round(self.control_timestep / self.model_timestep) != 1:
            raise ValueError("the fast twin steps one physics step per env step, as sai_mujoco 0.1.30 does")
        m = self.model
        robot = base.robots[0]
        prefix = robot.name_prefix
        kind = self.task.name
        self._kind = kind

        def site(name: str) -> int:
            return mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, name)

        def joint_addr(name: str) -> tuple[int, int]:
            jid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, name)
            return int(m.jnt_qposadr[jid]), int(m.jnt_dofadr[jid])

        addrs = [joint_addr(name) for name in robot.robot_joints]
        self._qpos_idx = np.array([a for a, _ in addrs])
        self._qvel_idx = np.array([d for _, d in addrs])
        parts = robot.composite_controller.part_controllers
        act_idx = np.concatenate([robot._ref_actuators_indexes_dict[p] for p in parts]).astype(np.int64)
        contiguous = np.array_equal(act_idx, np.arange(act_idx[0], act_idx[0] + act_idx.size))
        self._act: slice | np.ndarray = slice(int(act_idx[0]), int(act_idx[-1]) + 1) if contiguous else act_idx
        """The robot's actuators in action order (a slice when contiguous: cheaper to assign)."""
        self._ctrl_low = m.actuator_ctrlrange[act_idx, 0].copy()
        self._ctrl_high = m.actuator_ctrlrange[act_idx, 1].copy()
        self._ball_site = site("ball")
        self._robot_site = site(base._root_site)
        self._goal_sites = (site("goal_post_south"), site("goal_post_north"))
        self._ball_geom = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "ball")
        self._geom_role = np.zeros(m.ngeom, dtype=np.int8)
        """Per geom: _ROBOT for the robot's geoms, _BLOCKER for the keeper / defenders, 0 otherwise."""
        self._geom_role[list(base.robot_geom_ids)] = _ROBOT
        sensor = {mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_SENSOR, i): i for i in range(m.nsensor)}

        def sensor_slice(name: str) -> slice:
            i = sensor[f"{prefix}{name}"]
            return slice(int(m.sensor_adr[i]), int(m.sensor_adr[i] + m.sensor_dim[i]))

        self._acc = sensor_slice("accelerometer")
        self._gyro = sensor_slice("torso_gyro")
        self._vel = sensor_slice("torso_vel")
        quat = sensor_slice("torso_quat")
        self._quat_idx = np.arange(quat.start, quat.stop)[[1, 2, 3, 0]]
        params = base.parameters_dict["env_parameters"]
        self._field = (params["field"]["length"], params["field"]["width"], params["goal"]["width"],
                       params["goal"]["height"], params["goal"]["depth"])
        self._length, self._width = params["field"]["length"], params["field"]["width"]
        self._goal_width, self._goal_height, self._goal_depth = (
            params["goal"]["width"], params["goal"]["height"], params["goal"]["depth"])
        self._fall_height = robot.standing_height[0]
        self._keeper_sites: tuple[int, int] | None = None
        self._keeper_joints: tuple[tuple[int, int], ...] = ()
        self._target_site = self._robot_site
        self._defender_geoms: tuple[int, ...] = ()
        if kind == _GOALIE:
            self._keeper_sites = (site("goalkeeper_team_0_site"), site("goalkeeper_team_1_site"))
            self._keeper_joints = (joint_addr("goalkeeper_team_0_joint"), joint_addr("goalkeeper_team_1_joint"))
            self._keeper_amp = self._goal_width - 0.6
            self._geom_role[base.keeper_id] = _BLOCKER
        elif kind == _OBSTACLE:
            self._target_site = site(base.goal_site)
            self._defender_geoms = tuple(
                mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"defender_geom{i}") for i in range(3))
            self._geom_role[list(base.goalkeeper_geom_ids)] = _BLOCKER
        else:
            self._target_site = site(base.target_name)
        self._goal_sites_arr = np.array(self._goal_sites)
        self._defender_geoms_arr = np.array(self._defender_geoms, dtype=np.int64)
        keeper_sites = list(self._keeper_sites) if self._keeper_sites is not None else []
        self._rel_sites = np.array([self._ball_site, *self._goal_sites, self._target_site, *keeper_sites])
        """Sites whose position relative to the robot the obs and info use: ball, goals, target, keepers."""
        self._field_info = dict(zip(("length", "width", "goal_width", "goal_height", "goal_depth"), self._field,
                                    strict=True))
        self._jacp = np.zeros((3, m.nv))
        self._jacr = np.zeros((3, m.nv))
        self._normal = self._goal_normal()
        self._ctx = KernelContext()
        """The episode counters (and, with the C step, its whole configuration and buffers)."""
        self._native = load_kernel() if native else None
        if self._native is not None:
            self._setup_native()

    def _goal_normal(self) -> np.ndarray:
        """The unit normal of the goal plane, built from the same three vertices as sai_mujoco (always +x)."""
        gx = self.data.site_xpos[self._goal_sites[0], 0]
        w, h = self._goal_width, self._goal_height
        vertices = np.array([[gx, -w, 0.0], [gx, w, 0.0], [gx, -w, h]])
        normal = np.cross(vertices[1] - vertices[0], vertices[2] - vertices[1])
        return normal / np.linalg.norm(normal)

    def _setup_native(self) -> None:
        """Fill the C step's configuration and point its inputs and outputs at arrays this env owns."""
        ctx, m = self._ctx, self.model
        ctx.kind = {_GOALIE: 0, _OBSTACLE: 1, _KICK: 2}[self._kind]
        act = np.arange(self.model.nu)[self._act]
        ctx.nact = len(act)
        ctx.act_idx[:] = act.tolist()
        ctx.ctrl_low[:], ctx.ctrl_high[:] = self._ctrl_low.tolist(), self._ctrl_high.tolist()
        ctx.qpos_idx[:], ctx.qvel_idx[:] = self._qpos_idx.tolist(), self._qvel_idx.tolist()
        ctx.ball_site, ctx.robot_site = self._ball_site, self._robot_site
        ctx.goal_site0, ctx.goal_site1 = self._goal_sites
        ctx.target_site = self._target_site
        ctx.keeper_site0, ctx.keeper_site1 = self._keeper_sites or (self._robot_site, self._robot_site)
        if self._keeper_joints:
            ctx.keeper_qpos[:] = [q for q, _ in self._keeper_joints]
            ctx.keeper_dof[:] = [d for _, d in self._keeper_joints]
            # The keeper's sinusoid at every step's start time, with numpy as move_goalkeeper computes it
            # (the time advances by opt.timestep per mj_step from 0 at reset).
            times = np.zeros(self.max_episode_steps + 1)
            t = 0.0
            for k in range(len(times)):
                times[k] = t
                t += float(m.opt.timestep)
            omega = 2 * np.pi * _KEEPER_FREQ
            self._keeper_pos = self._keeper_amp * np.sin(omega * times)
            self._keeper_vel = omega * self._keeper_amp * np.cos(omega * times)
            ctx.keeper_pos, ctx.keeper_vel = pointer(self._keeper_pos), pointer(self._keeper_vel)
        if self._defender_geoms:
            ctx.defender_geom[:] = list(self._defender_geoms)
        ctx.ball_geom = self._ball_geom
        ctx.geom_role = pointer(self._geom_role)
        ctx.acc_adr, ctx.gyro_adr, ctx.vel_adr = self._acc.start, self._gyro.start, self._vel.start
        ctx.quat_adr = int(self._quat_idx[3])
        ctx.fall_height = self._fall_height
        ctx.length, ctx.width = self._length, self._width
        ctx.goal_width, ctx.goal_height, ctx.goal_depth = self._goal_width, self._goal_height, self._goal_depth
        ctx.normal[:] = self._normal.tolist()
        ctx.max_steps = self.max_episode_steps
        order = _KTT_TERMS if self._kind == _KICK else _PK_TERMS
        self._reward_w = np.array([self.reward_config.get(k, np.nan) for k in order])
        self._torques_in, self._targets_in = np.zeros(12), np.zeros(12)
        self._pd_low, self._pd_high, self._kp, self._kd = np.zeros(12), np.zeros(12), np.zeros(12), np.zeros(12)
        self._terms = np.zeros(N_TERMS)
        self._flags = np.zeros(4, np.intc)
        self._rewards = np.zeros(2)
        self._obs_out = np.zeros(self.observation_space.shape, np.float32)
        self._vectors = np.zeros(N_VECTORS)
        self._sensors = np.zeros(13, np.float32)
        for field, array in (("torques", self._torques_in), ("targets", self._targets_in), ("pd_low", self._pd_low),
                             ("pd_high", self._pd_high), ("kp", self._kp), ("kd", self._kd),
                             ("reward_w", self._reward_w), ("terms", self._terms), ("flags", self._flags),
                             ("rewards", self._rewards), ("obs", self._obs_out), ("vectors", self._vectors),
                             ("sensors", self._sensors)):
            setattr(ctx, field, pointer(array))
        self._model_ptr, self._data_ptr = self.model._address, self.data._address
        self._ctx_ref = ctypes.byref(ctx)

    def _native_result(self, reward: float) -> tuple[np.ndarray, float, bool, bool, dict]:
        """(obs, reward, terminated, truncated, info) from the C step's output arrays (copied)."""
        vectors, sensors = self._vectors.copy(), self._sensors.copy()
        info = dict(self._field_info)
        n = len(VECTOR_FIELDS)
        info.update(zip(VECTOR_FIELDS, vectors[:3 * n].reshape(n, 3), strict=True))
        info["defender_xpos"] = vectors[3 * n:]
        info["player_team"] = np.array([1, 0])
        info.update(zip(SENSOR_NAMES, (sensors[0:3], sensors[3:6], sensors[6:9], sensors[9:13]), strict=True))
        terminated, truncated, _, success = self._flags.tolist()
        info["success"] = bool(success)
        t = self._terms.tolist()
        if self._kind == _KICK:
            terms = {"offside": t[0] != 0, "success": t[1] != 0, "distance": t[2], "robot_distance_ball": t[3]}
        else:
            terms = {"robot_distance_ball": 1.5 if self._ctx.hits > 0 else np.float32(t[0]),
                     "ball_vel_twd_goal": t[1], "offside": t[2] != 0, "ball_hits": t[3], "robot_fallen": t[4] != 0,
                     "goal_scored": t[5] != 0, "ball_blocked": t[6] != 0}
            if self._kind == _OBSTACLE:
                terms["ball_distance_target"] = t[7]
        info["reward_terms"] = terms
        return self._obs_out.copy(), reward, bool(terminated), bool(truncated), info

    # -- gymnasium API ---------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """The official env's reset (its initial state, randomisation and seeding), then our counters."""
        obs, info = self.official.reset(seed=seed, options=options)
        ctx = self._ctx
        ctx.hits = ctx.contact_active = ctx.elapsed = 0
        if self._kind == _KICK:
            ctx.ktt_goal[:] = np.asarray(self.official.goal_pos, np.float64)[:3]
        return obs, info

    @property
    def elapsed_steps(self) -> int:
        """Env steps since the reset (the TimeLimit count)."""
        return self._ctx.elapsed

    @elapsed_steps.setter
    def elapsed_steps(self, value: int) -> None:
        self._ctx.elapsed = value

    @property
    def ball_hits_by_robot(self) -> int:
        """New robot-ball contacts this episode (sai_mujoco's counter of the same name)."""
        return self._ctx.hits

    @ball_hits_by_robot.setter
    def ball_hits_by_robot(self, value: int) -> None:
        self._ctx.hits = value

    @property
    def _ball_contact_active(self) -> bool:
        return bool(self._ctx.contact_active)

    @_ball_contact_active.setter
    def _ball_contact_active(self, value: bool) -> None:
        self._ctx.contact_active = int(value)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """One official env step for raw torques (N·m): physics, reward terms, terminations, info, obs."""
        if self._native is not None and self.elapsed_steps < self.max_episode_steps:
            self._torques_in[:] = action
            self._native.fastsim_step(self._model_ptr, self._data_ptr, self._ctx_ref, 0, 1)
            return self._native_result(np.float32(self._rewards[0]))
        self._physics_step(np.asarray(action))
        return self._finish(*self._evaluate())

    def step_pd(self, targets: np.ndarray, repeat: int, low: np.ndarray, high: np.ndarray,
                kp: np.ndarray, kd: np.ndarray, *, through: bool = False) -> tuple[np.ndarray, float, bool, bool, dict]:
        """`repeat` env steps of the PD law toward joint `targets`, fused (module docstring).

        Torques = float32(clip(kp (targets - q) - kd qd, low, high)) with q, qd the float32-rounded joint
        state, recomputed at every physics step. Returns the last step's (obs, info) with the summed env
        reward and `info["physics_steps"]`; stops early at a termination (unless `through`: skills that
        measure walking step on past the task's endings) or the time limit.
        """
        if self._native is not None and self.elapsed_steps + repeat <= self.max_episode_steps:
            for buffer, values in ((self._targets_in, targets), (self._pd_low, low), (self._pd_high, high),
                                   (self._kp, kp), (self._kd, kd)):
                buffer[:] = values
            steps = self._native.fastsim_step(self._model_ptr, self._data_ptr, self._ctx_ref, 3 if through else 1,
                                              repeat)
            obs, _, terminated, truncated, info = self._native_result(0.0)
            info["physics_steps"] = steps
            return obs, float(self._rewards[1]), terminated, truncated, info
        data = self.data
        total, steps = 0.0, 0
        while True:
            q = data.qpos[self._qpos_idx].astype(np.float32).astype(np.float64)
            qd = data.qvel[self._qvel_idx].astype(np.float32).astype(np.float64)
            torques = np.clip(kp * (targets - q) - kd * qd, low, high).astype(np.float32)
            self._physics_step(torques)
            terms, terminated = self._evaluate()
            steps += 1
            if steps >= repeat or (terminated and not through) or self.elapsed_steps >= self.max_episode_steps:
                break
            total += float(self._env_reward(terms))
        obs, reward, terminated, truncated, info = self._finish(terms, terminated)
        info["physics_steps"] = steps
        return obs, total + float(reward), terminated, truncated, info

    def render(self) -> Any:
        """The official env's renderer on the same MjData."""
        return self.official.render()

    def close(self) -> None:
        self.official.close()

    # -- the step, piece by piece ------------------------------------------------------------------------

    def _physics_step(self, torques: np.ndarray) -> None:
        data = self.data
        if self._keeper_joints:
            # GoaliePenaltyKick.move_goalkeeper, before the physics step, at the step's start time.
            t = data.time
            pos = self._keeper_amp * np.sin(2 * np.pi * _KEEPER_FREQ * t)
            vel = 2 * np.pi * _KEEPER_FREQ * self._keeper_amp * np.cos(2 * np.pi * _KEEPER_FREQ * t)
            qpos, qvel = data.qpos, data.qvel
            for qadr, dadr in self._keeper_joints:
                qpos[qadr] = pos
                qvel[dadr] = vel
        # np.minimum(np.maximum()) is np.clip (NaN included) at half its cost.
        data.ctrl[self._act] = np.minimum(np.maximum(torques, self._ctrl_low), self._ctrl_high)
        self._mj.mj_step(self.model, data)
        self.elapsed_steps += 1

    def _finish(self, terms: dict, terminated: bool) -> tuple[np.ndarray, float, bool, bool, dict]:
        truncated = self.elapsed_steps >= self.max_episode_steps
        obs, info = self._obs_info()
        info["reward_terms"] = terms
        return obs, self._env_reward(terms), terminated, truncated, info

    def _env_reward(self, terms: dict) -> np.float32:
        """sai_mujoco's weighted sum of the raw terms in float32 (BaseEnv_v1._total_reward)."""
        config = self.reward_config
        return np.sum([config[k] * v for k, v in terms.items() if k in config], dtype=np.float32)

    def _ball_contacts(self) -> tuple[bool, bool]:
        """(robot touches the ball, the keeper / a defender touches the ball) in the current contact list."""
        if self.data.ncon == 0:
            return False, False
        pairs = self.data.contact.geom.ravel()
        at_ball = np.flatnonzero(pairs == self._ball_geom)
        if at_ball.size == 0:
            return False, False
        partners = self._geom_role[pairs[at_ball ^ 1]]
        return bool((partners == _ROBOT).any()), bool((partners == _BLOCKER).any())

    def _linear_velocity(self, site: int) -> np.ndarray:
        """World linear velocity of a site as sai_mujoco computes it: the site's position Jacobian times qvel."""
        self._mj.mj_jacSite(self.model, self.data, self._jacp, None, site)
        return np.dot(self._jacp, self.data.qvel)

    def _angular_velocity(self, site: int) -> np.ndarray:
        self._mj.mj_jacSite(self.model, self.data, None, self._jacr, site)
        return np.dot(self._jacr, self.data.qvel)

    def _inside_goal(self, ball: np.ndarray) -> bool:
        """Goalie: the ball point inside the attacked goal's box; Obstacle: within 0.3 m of the target box."""
        xpos = self.data.site_xpos
        if self._kind == _OBSTACLE:
            return bool(np.linalg.norm(xpos[self._target_site] - ball) < 0.3)
        centre = xpos[self._goal_sites[0]]
        x = centre[0]
        x_max = x + self._goal_depth if x >= 0 else x - self._goal_depth
        if x > x_max:
            x, x_max = x_max, x
        return bool((x <= ball[0] <= x_max)
                    and (centre[1] - self._goal_width <= ball[1] < centre[1] + self._goal_width)
                    and (ball[2] < centre[2] + self._goal_height))

    def _outside_field(self, ball: np.ndarray, inside_goal: bool) -> bool:
        outside = (ball[0] < -self._length or ball[0] > self._length
                   or ball[1] < -self._width or ball[1] > self._width)
        return not inside_goal and outside

    def _ktt_success(self, ball: np.ndarray) -> tuple[float, bool]:
        distance = np.linalg.norm(ball - self.official.goal_pos, axis=-1)
        return np.exp(-distance), bool(distance < 0.4)

    def compute_reward(self) -> dict:
        """The raw reward terms of the current state (sai_mujoco's compute_reward, contact counter included)."""
        return self._evaluate()[0]

    def _evaluate(self) -> tuple[dict, bool]:
        """(raw reward terms in sai_mujoco's key order, terminated) of the current state.

        The terms follow compute_reward of PenaltyKick / GoaliePenaltyKick / ObstaclePenaltyKick / KickToTarget,
        including the side effect on the robot-ball contact counter; terminated is a NaN state, a fall (trunk
        IMU at or below 0.4 m), and per task: goal, offside, keeper / defender contact; KTT offside or success.
        """
        data = self.data
        xpos = data.site_xpos
        ball = xpos[self._ball_site]
        robot = xpos[self._robot_site]
        fallen = not (self._fall_height < robot[2])
        nan = bool(np.isnan(data.qpos).any() | np.isnan(data.qvel).any())
        if self._kind == _KICK:
            distance_reward, inside_target = self._ktt_success(ball)
            offside = self._outside_field(ball, False)
            terms = {
                "offside": offside,
                "success": inside_target,
                "distance": distance_reward,
                "robot_distance_ball": 1 - np.tanh(np.linalg.norm(ball - robot)),
            }
            return terms, nan or fallen or offside or inside_target
        inside_goal = self._inside_goal(ball)
        offside = self._outside_field(ball, inside_goal)
        touching, blocked = self._ball_contacts()
        if touching and not self._ball_contact_active:
            self.ball_hits_by_robot += 1
            self._ball_contact_active = True
        elif not touching and self._ball_contact_active:
            self._ball_contact_active = False
        scaled_distance = 1 - np.tanh(np.linalg.norm(robot - ball), dtype=np.float32)
        terms = {
            "robot_distance_ball": 1.5 if self.ball_hits_by_robot > 0 else scaled_distance,
            "ball_vel_twd_goal": -np.dot(self._linear_velocity(self._ball_site), self._normal),
            "offside": offside,
            "ball_hits": np.log1p(max(0, self.ball_hits_by_robot - 1)),
            "robot_fallen": fallen,
            "goal_scored": inside_goal,
            "ball_blocked": blocked,
        }
        if self._kind == _OBSTACLE:
            terms["ball_distance_target"] = 1 - np.tanh(np.linalg.norm(xpos[self._target_site] - ball))
        return terms, nan or fallen or inside_goal or offside or blocked

    def _obs_info(self) -> tuple[np.ndarray, dict]:
        """The raw float32 observation (45 / 54 / 39) and the official info dict (25 keys) of the current state.

        Every vector is computed as sai_mujoco computes it (differences of site positions, Jacobian velocities),
        so the values are bitwise the official ones; the relative positions come from one gather.
        """
        data = self.data
        xpos = data.site_xpos
        robot = xpos[self._robot_site]
        rel = xpos[self._rel_sites] - robot
        ball_rel, goal0_rel, goal1_rel, target_rel = rel[0], rel[1], rel[2], rel[3]
        goals_ball = xpos[self._goal_sites_arr] - xpos[self._ball_site]
        ball_velp, ball_velr = self._linear_velocity(self._ball_site), self._angular_velocity(self._ball_site)
        robot_velp, robot_velr = self._linear_velocity(self._robot_site), self._angular_velocity(self._robot_site)
        velp_rel, velr_rel = ball_velp - robot_velp, ball_velr - robot_velr
        sensordata = data.sensordata
        info = dict(self._field_info)
        info.update({
            "goal_team_0_rel_robot": goal0_rel,
            "goal_team_1_rel_robot": goal1_rel,
            "goal_team_0_rel_ball": goals_ball[0],
            "goal_team_1_rel_ball": goals_ball[1],
            "ball_xpos_rel_robot": ball_rel,
            "ball_velp_rel_robot": velp_rel,
            "ball_velr_rel_robot": velr_rel,
            "player_team": np.array([1, 0]),
            "robot_accelerometer": sensordata[self._acc].astype(np.float32),
            "robot_gyro": sensordata[self._gyro].astype(np.float32),
            "robot_velocimeter": sensordata[self._vel].astype(np.float32),
            "robot_quat": sensordata[self._quat_idx].astype(np.float32),
        })
        parts = [data.qpos[self._qpos_idx], data.qvel[self._qvel_idx], ball_rel, velp_rel, velr_rel]
        if self._kind == _KICK:
            target_velp = self._linear_velocity(self._target_site) - robot_velp
            parts += [target_rel, target_velp]
            zero = robot - robot
            zero_vel = robot_velp - robot_velp
            keepers = (zero, zero_vel, zero, zero_vel)
            defenders = np.concatenate([robot, robot, robot])
        else:
            parts += [goal0_rel, goals_ball[0]]
            if self._kind == _GOALIE:
                keeper0, keeper1 = self._keeper_sites
                keepers = (rel[4], self._linear_velocity(keeper0) - robot_velp,
                           rel[5], self._linear_velocity(keeper1) - robot_velp)
                parts += keepers[:2]
                target_velp = robot_velp - robot_velp
                defenders = np.concatenate([robot, robot, robot])
            else:
                target_velp = self._linear_velocity(self._target_site) - robot_velp
                zero = robot - robot
                zero_vel = robot_velp - robot_velp
                keepers = (zero, zero_vel, zero, zero_vel)
                defender_rows = data.geom_xpos[self._defender_geoms_arr]
                parts += [target_rel, target_velp, defender_rows.ravel()]
                defenders = defender_rows.ravel()
        info["goalkeeper_team_0_xpos_rel_robot"] = keepers[0]
        info["goalkeeper_team_0_velp_rel_robot"] = keepers[1]
        info["goalkeeper_team_1_xpos_rel_robot"] = keepers[2]
        info["goalkeeper_team_1_velp_rel_robot"] = keepers[3]
        info["target_xpos_rel_robot"] = target_rel
        info["target_velp_rel_robot"] = target_velp
        info["defender_xpos"] = defenders
        ball = xpos[self._ball_site]
        info["success"] = self._ktt_success(ball)[1] if self._kind == _KICK else self._inside_goal(ball)
        return np.concatenate(parts, dtype=np.float32), info


def make_fast_env(task: Task | str, render_mode: str | None = None, max_episode_steps: int | None = None,
                  **render_kwargs: Any) -> FastSoccerEnv:
    """A fast twin on a fresh official env of `task` (gym.make's env, whose reset and model it reuses)."""
    import sai_mujoco  # noqa: F401  (registers the ids)

    spec = get_task(task) if isinstance(task, str) else task
    official = gym.make(spec.env_id, render_mode=render_mode, **render_kwargs)
    return FastSoccerEnv(official, spec, max_episode_steps=max_episode_steps)



class FusedPDRepeat(gym.Wrapper):
    """The pd action mode with action repeat on a fast twin, in one loop (FastSoccerEnv.step_pd).

    Equal to PDAction followed by ActionRepeat(k) on the official env: the same targets
    (default pose + scale * clip(action, -1, 1)), the same torques at every physics step, rewards summed,
    early stop at a termination or truncation, info["physics_steps"].
    """

    def __init__(self, env: FastSoccerEnv, scale: float, repeat: int) -> None:
        super().__init__(env)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            raise ValueError(f"action_repeat must be an integer >= 1, got {repeat!r}")
        self.scale = float(scale)
        self.repeat = repeat
        self._pose, self._kp, self._kd = T1_DEFAULT_POSE, T1_KP, T1_KD
        self.low = env.action_space.low.astype(np.float64)
        self.high = env.action_space.high.astype(np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, self.low.shape, np.float32)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        targets = self._pose + self.scale * np.clip(action, -1.0, 1.0)
        return self.env.unwrapped.step_pd(targets, self.repeat, self.low, self.high, self._kp, self._kd)
