/* The fast twin's step in C: the same computation as envs/fastsim.py's Python path, without the interpreter.
 *
 * Built on demand by envs/fastsim_native.py (cc -O2 -ffp-contract=off, against the headers and the shared
 * library of the installed mujoco wheel) and called through ctypes. One call runs `repeat` physics steps:
 * per step the goalkeeper's sinusoid (Goalie; values precomputed in Python with numpy, indexed by the
 * episode's step), the torques (given, or the T1 PD law from the float32-rounded joint state), the clip to
 * the actuator range, mj_step, then the reward terms and terminations exactly as sai_mujoco defines them;
 * it stops early at a termination or the time limit. After the last step it writes the observation and
 * info vectors. Arithmetic follows the numpy expressions term by term (no FMA contraction); norms, tanh and
 * the site-velocity dot products may round differently in the last bit, which the parity tests bound.
 */
#include <math.h>
#include <string.h>

#include <mujoco/mujoco.h>

enum { KIND_GOALIE = 0, KIND_OBSTACLE = 1, KIND_KICK = 2 };
enum { ROLE_ROBOT = 1, ROLE_BLOCKER = 2 };
enum { MAX_NV = 64 };

/* Terms, in this order: robot_distance_ball, ball_vel_twd_goal, offside, ball_hits, robot_fallen,
 * goal_scored, ball_blocked, ball_distance_target (penalty kicks); offside, success, distance,
 * robot_distance_ball (kick_to_target). */
enum { N_TERMS = 8 };

typedef struct {
  /* configuration, set once from Python */
  int kind;
  int nact;
  int act_idx[12];
  double ctrl_low[12], ctrl_high[12];
  int qpos_idx[12], qvel_idx[12];
  int ball_site, robot_site, goal_site0, goal_site1, target_site, keeper_site0, keeper_site1;
  int keeper_qpos[2], keeper_dof[2];
  const double* keeper_pos; /* per elapsed step (max_steps + 1 entries) */
  const double* keeper_vel;
  int defender_geom[3];
  int ball_geom;
  const signed char* geom_role; /* ngeom entries */
  int acc_adr, gyro_adr, vel_adr, quat_adr;
  double fall_height, length, width, goal_width, goal_height, goal_depth;
  double normal[3];
  double ktt_goal[3];
  int max_steps;
  /* inputs */
  const double* torques;    /* 12: mode 0 */
  const double* targets;    /* 12: mode 1 */
  const double* pd_low;     /* 12 */
  const double* pd_high;    /* 12 */
  const double* kp;         /* 12 */
  const double* kd;         /* 12 */
  const double* reward_w;   /* N_TERMS env reward weights, NaN for a term the env reward leaves out */
  /* state */
  int hits, contact_active, elapsed;
  /* outputs */
  double* terms;            /* N_TERMS */
  int* flags;               /* terminated, truncated, physics steps, success */
  double* rewards;          /* the last step's env reward (float32 value), the sum over the steps taken */
  float* obs;               /* raw obs (45 / 54 / 39) */
  double* vectors;          /* 16 x 3 info vectors + defenders 9 (layout in fastsim_native.py) */
  float* sensors;           /* accelerometer 3, gyro 3, velocimeter 3, quat xyzw 4 */
} Ctx;

static double norm3(const double* a, const double* b) {
  double x = a[0] - b[0], y = a[1] - b[1], z = a[2] - b[2];
  return sqrt(x * x + y * y + z * z);
}

static void site_velocity(const mjModel* m, const mjData* d, int site, double* linear, double* angular) {
  mjtNum jacp[3 * MAX_NV], jacr[3 * MAX_NV];
  mj_jacSite(m, d, linear ? jacp : NULL, angular ? jacr : NULL, site);
  for (int r = 0; r < 3; r++) {
    double sp = 0.0, sr = 0.0;
    for (int j = 0; j < m->nv; j++) {
      if (linear) sp += jacp[r * m->nv + j] * d->qvel[j];
      if (angular) sr += jacr[r * m->nv + j] * d->qvel[j];
    }
    if (linear) linear[r] = sp;
    if (angular) angular[r] = sr;
  }
}

static double clip(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }

static int outside_field(const Ctx* c, const double* ball, int inside_goal) {
  int outside = ball[0] < -c->length || ball[0] > c->length || ball[1] < -c->width || ball[1] > c->width;
  return !inside_goal && outside;
}

static int inside_goal(const Ctx* c, const mjData* d, const double* ball) {
  const double* xpos = d->site_xpos;
  if (c->kind == KIND_OBSTACLE) return norm3(xpos + 3 * c->target_site, ball) < 0.3;
  const double* centre = xpos + 3 * c->goal_site0;
  double x = centre[0];
  double x_max = x >= 0 ? x + c->goal_depth : x - c->goal_depth;
  if (x > x_max) { double t = x; x = x_max; x_max = t; }
  return (x <= ball[0] && ball[0] <= x_max) && (centre[1] - c->goal_width <= ball[1] &&
          ball[1] < centre[1] + c->goal_width) && (ball[2] < centre[2] + c->goal_height);
}

/* Terms of the current state (with the contact counter's side effect); returns terminated. */
static int evaluate(const mjModel* m, const mjData* d, Ctx* c) {
  const double* xpos = d->site_xpos;
  const double* ball = xpos + 3 * c->ball_site;
  const double* robot = xpos + 3 * c->robot_site;
  int fallen = !(c->fall_height < robot[2]);
  int nan = 0;
  for (int i = 0; i < m->nq; i++) nan |= isnan(d->qpos[i]);
  for (int i = 0; i < m->nv; i++) nan |= isnan(d->qvel[i]);
  double* t = c->terms;
  if (c->kind == KIND_KICK) {
    double dist = norm3(ball, c->ktt_goal);
    int success = dist < 0.4;
    int offside = outside_field(c, ball, 0);
    t[0] = offside; t[1] = success; t[2] = exp(-dist); t[3] = 1.0 - tanh(norm3(ball, robot));
    c->flags[3] = success;
    return nan || fallen || offside || success;
  }
  int goal = inside_goal(c, d, ball);
  int offside = outside_field(c, ball, goal);
  int touching = 0, blocked = 0;
  for (int i = 0; i < d->ncon; i++) {
    int g1 = d->contact[i].geom[0], g2 = d->contact[i].geom[1], other = -1;
    if (g2 == c->ball_geom && g1 >= 0) other = g1;
    else if (g1 == c->ball_geom && g2 >= 0) other = g2;
    if (other < 0) continue;
    touching |= c->geom_role[other] == ROLE_ROBOT;
    blocked |= c->geom_role[other] == ROLE_BLOCKER;
  }
  if (touching && !c->contact_active) { c->hits += 1; c->contact_active = 1; }
  else if (!touching && c->contact_active) c->contact_active = 0;
  double velp[3];
  site_velocity(m, d, c->ball_site, velp, NULL);
  /* 1 - tanh in float32, as sai_mujoco's np.tanh(distance, dtype=np.float32) */
  t[0] = c->hits > 0 ? 1.5 : (double)(1.0f - tanhf((float)norm3(robot, ball)));
  t[1] = -(velp[0] * c->normal[0] + velp[1] * c->normal[1] + velp[2] * c->normal[2]);
  t[2] = offside;
  t[3] = log1p((double)(c->hits - 1 > 0 ? c->hits - 1 : 0));
  t[4] = fallen;
  t[5] = goal;
  t[6] = blocked;
  t[7] = c->kind == KIND_OBSTACLE ? 1.0 - tanh(norm3(xpos + 3 * c->target_site, ball)) : 0.0;
  c->flags[3] = goal;
  return nan || fallen || goal || offside || blocked;
}

/* sai_mujoco's float32 weighted sum (BaseEnv_v1._total_reward): each weight x term rounded to float32 (the
 * unlatched robot_distance_ball, a float32, is multiplied in float32), summed in float32 in term order. */
static float env_reward(const Ctx* c) {
  float sum = 0.0f;
  for (int i = 0; i < N_TERMS; i++) {
    double w = c->reward_w[i];
    if (isnan(w)) continue;
    int float32_term = c->kind != KIND_KICK && i == 0 && c->hits == 0;
    sum += float32_term ? (float)w * (float)c->terms[i] : (float)(w * c->terms[i]);
  }
  return sum;
}

static void physics_step(const mjModel* m, mjData* d, Ctx* c, const double* torques) {
  if (c->kind == KIND_GOALIE) {
    int k = c->elapsed <= c->max_steps ? c->elapsed : c->max_steps;
    for (int i = 0; i < 2; i++) {
      d->qpos[c->keeper_qpos[i]] = c->keeper_pos[k];
      d->qvel[c->keeper_dof[i]] = c->keeper_vel[k];
    }
  }
  for (int i = 0; i < c->nact; i++) d->ctrl[c->act_idx[i]] = clip(torques[i], c->ctrl_low[i], c->ctrl_high[i]);
  mj_step(m, d);
  c->elapsed += 1;
}

static void sub3(double* out, const double* a, const double* b) {
  out[0] = a[0] - b[0]; out[1] = a[1] - b[1]; out[2] = a[2] - b[2];
}

/* Info vectors (16 x 3 + 9 defenders) and the raw obs of the current state. */
static void outputs(const mjModel* m, const mjData* d, Ctx* c) {
  const double* xpos = d->site_xpos;
  const double* ball = xpos + 3 * c->ball_site;
  const double* robot = xpos + 3 * c->robot_site;
  double* v = c->vectors;
  double ball_velp[3], ball_velr[3], robot_velp[3], robot_velr[3], tmp[3];
  site_velocity(m, d, c->ball_site, ball_velp, ball_velr);
  site_velocity(m, d, c->robot_site, robot_velp, robot_velr);
  sub3(v + 0, xpos + 3 * c->goal_site0, robot);    /* goal_team_0_rel_robot */
  sub3(v + 3, xpos + 3 * c->goal_site1, robot);    /* goal_team_1_rel_robot */
  sub3(v + 6, xpos + 3 * c->goal_site0, ball);     /* goal_team_0_rel_ball */
  sub3(v + 9, xpos + 3 * c->goal_site1, ball);     /* goal_team_1_rel_ball */
  sub3(v + 12, ball, robot);                       /* ball_xpos_rel_robot */
  sub3(v + 15, ball_velp, robot_velp);             /* ball_velp_rel_robot */
  sub3(v + 18, ball_velr, robot_velr);             /* ball_velr_rel_robot */
  if (c->kind == KIND_GOALIE) {
    sub3(v + 21, xpos + 3 * c->keeper_site0, robot);
    site_velocity(m, d, c->keeper_site0, tmp, NULL);
    sub3(v + 24, tmp, robot_velp);
    sub3(v + 27, xpos + 3 * c->keeper_site1, robot);
    site_velocity(m, d, c->keeper_site1, tmp, NULL);
    sub3(v + 30, tmp, robot_velp);
  } else {
    sub3(v + 21, robot, robot);
    sub3(v + 24, robot_velp, robot_velp);
    sub3(v + 27, robot, robot);
    sub3(v + 30, robot_velp, robot_velp);
  }
  sub3(v + 33, xpos + 3 * c->target_site, robot);  /* target_xpos_rel_robot */
  if (c->target_site == c->robot_site) {
    sub3(v + 36, robot_velp, robot_velp);
  } else {
    site_velocity(m, d, c->target_site, tmp, NULL);
    sub3(v + 36, tmp, robot_velp);
  }
  for (int i = 0; i < 3; i++) {                    /* defender_xpos */
    const double* src = c->kind == KIND_OBSTACLE ? d->geom_xpos + 3 * c->defender_geom[i] : robot;
    memcpy(v + 39 + 3 * i, src, 3 * sizeof(double));
  }
  const double* s = d->sensordata;
  for (int i = 0; i < 3; i++) {
    c->sensors[i] = (float)s[c->acc_adr + i];
    c->sensors[3 + i] = (float)s[c->gyro_adr + i];
    c->sensors[6 + i] = (float)s[c->vel_adr + i];
  }
  c->sensors[9] = (float)s[c->quat_adr + 1];
  c->sensors[10] = (float)s[c->quat_adr + 2];
  c->sensors[11] = (float)s[c->quat_adr + 3];
  c->sensors[12] = (float)s[c->quat_adr + 0];
  float* o = c->obs;
  int n = 0;
  for (int i = 0; i < 12; i++) o[n++] = (float)d->qpos[c->qpos_idx[i]];
  for (int i = 0; i < 12; i++) o[n++] = (float)d->qvel[c->qvel_idx[i]];
  for (int i = 12; i < 21; i++) o[n++] = (float)v[i];                 /* ball rel, velp rel, velr rel */
  if (c->kind != KIND_KICK) {
    for (int i = 0; i < 3; i++) o[n++] = (float)v[i];                 /* goal_team_0_rel_robot */
    for (int i = 6; i < 9; i++) o[n++] = (float)v[i];                 /* goal_team_0_rel_ball */
  }
  if (c->kind == KIND_GOALIE) {
    for (int i = 21; i < 27; i++) o[n++] = (float)v[i];               /* keeper 0 rel, velp rel */
  } else {
    for (int i = 33; i < 39; i++) o[n++] = (float)v[i];               /* target rel, velp rel */
  }
  if (c->kind == KIND_OBSTACLE) {
    for (int i = 39; i < 48; i++) o[n++] = (float)v[i];               /* defenders */
  }
}

/* mode & 1: PD toward targets (else torques given); mode & 2: do not stop at a termination (only at `repeat`
 * steps or the time limit). Returns the physics steps taken. */
int fastsim_step(const mjModel* m, mjData* d, Ctx* c, int mode, int repeat) {
  int pd = mode & 1, through = mode & 2;
  if (m->nv > MAX_NV) return -1;
  int steps = 0, terminated = 0;
  double torques[12], total = 0.0;
  float last = 0.0f;
  while (1) {
    if (pd) {
      for (int i = 0; i < c->nact; i++) {
        double q = (double)(float)d->qpos[c->qpos_idx[i]];
        double qd = (double)(float)d->qvel[c->qvel_idx[i]];
        double tau = c->kp[i] * (c->targets[i] - q) - c->kd[i] * qd;
        torques[i] = (double)(float)clip(tau, c->pd_low[i], c->pd_high[i]);
      }
      physics_step(m, d, c, torques);
    } else {
      physics_step(m, d, c, c->torques);
    }
    terminated = evaluate(m, d, c);
    steps += 1;
    last = env_reward(c);
    total += (double)last; /* ActionRepeat: total += float(reward), in step order */
    if (steps >= repeat || (terminated && !through) || c->elapsed >= c->max_steps) break;
  }
  c->rewards[0] = (double)last;
  c->rewards[1] = total;
  c->flags[0] = terminated;
  c->flags[1] = c->elapsed >= c->max_steps;
  c->flags[2] = steps;
  outputs(m, d, c);
  return steps;
}
