// train/train_config.cpp
// defines: TrainConfig validation and its JSON form (the run's numbers, stored in checkpoints).
#include "train/train_config.h"

#include "engine/device.h"
#include "engine/error.h"

namespace rankclip {

void TrainConfig::validate() const {
    RC_CHECK(batch_size >= 1, "--batch-size must be at least 1, got ", batch_size);
    RC_CHECK(epochs >= 0 && steps >= 0, "--epochs and --steps must not be negative");
    RC_CHECK(epochs > 0 || steps > 0, "give --epochs N or --steps N");
    RC_CHECK(lr > 0, "--lr must be positive, got ", lr);
    RC_CHECK(weight_decay >= 0, "--wd must not be negative, got ", weight_decay);
    RC_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "--beta1/--beta2 must be in [0, 1)");
    RC_CHECK(eps > 0, "--eps must be positive, got ", eps);
    RC_CHECK(warmup >= 0, "--warmup must not be negative, got ", warmup);
    RC_CHECK(grad_clip >= 0, "--grad-clip must not be negative, got ", grad_clip);
    RC_CHECK(accum >= 1 && batch_size % accum == 0, "--accum ", accum, " must be >= 1 and divide --batch-size ",
             batch_size);
    RC_CHECK(workers >= 0, "--workers must not be negative");
    RC_CHECK(precision == "fp32" || precision == "bf16", "--precision must be fp32 or bf16, got '", precision, "'");
    parse_device(device);
    RC_CHECK(log_every >= 1, "--log-every must be at least 1");
    RC_CHECK(eval_every >= 0 && save_every >= 0 && stop_at >= 0, "--eval-every, --save-every and --stop-at must not be negative");
    RC_CHECK(keep_last >= 1, "--keep-last must be at least 1");
    RC_CHECK(loss.rank_cross || loss.rank_in || loss.kind != LossKind::RankCLIP,
             "rankclip with both --no-rank-cross and --no-rank-in is plain clip: use --loss clip");
}

Json TrainConfig::to_json() const {
    Json l = Json::object();
    l.set("kind", loss_kind_name(loss.kind));
    l.set("rank_cross", loss.rank_cross);
    l.set("rank_in", loss.rank_in);
    l.set("rank_schedule", rank_weight_schedule_name(loss.rank_schedule));
    l.set("rank_weight", loss.rank_weight);
    l.set("rank_ramp_slope", loss.rank_ramp_slope);
    l.set("rank_ramp_cap", loss.rank_ramp_cap);
    l.set("lambda_cross", loss.lambda_cross ? Json(*loss.lambda_cross) : Json());
    l.set("lambda_in", loss.lambda_in ? Json(*loss.lambda_in) : Json());
    l.set("position_weighting", loss.position_weighting == PositionWeighting::Log ? "log" : "none");
    l.set("listmle_eps", loss.listmle_eps);
    l.set("rank_divisor", loss.rank_divisor);
    l.set("cyclip_lambda_in", loss.cyclip_lambda_in);
    l.set("cyclip_lambda_cross", loss.cyclip_lambda_cross);

    Json a = Json::object();
    a.set("scale_min", augment_options.scale_min);
    a.set("scale_max", augment_options.scale_max);
    a.set("ratio_min", augment_options.ratio_min);
    a.set("ratio_max", augment_options.ratio_max);
    a.set("hflip", augment_options.hflip);

    Json j = Json::object();
    j.set("model", model);
    j.set("data", data);
    j.set("vocab", vocab);
    j.set("loss", l);
    j.set("batch_size", batch_size);
    j.set("epochs", epochs);
    j.set("steps", steps);
    j.set("lr", lr);
    j.set("weight_decay", weight_decay);
    j.set("beta1", beta1);
    j.set("beta2", beta2);
    j.set("eps", eps);
    j.set("warmup", warmup);
    j.set("schedule", lr_schedule_name(schedule));
    j.set("grad_clip", grad_clip);
    j.set("accum", accum);
    j.set("augment", augment);
    j.set("augment_options", a);
    j.set("seed", seed);
    j.set("device", device);
    j.set("precision", precision);
    return j;
}

TrainConfig TrainConfig::from_json(const Json& j) {
    TrainConfig c;
    const Json& l = j.at("loss");
    c.loss.kind = parse_loss_kind(l.at("kind").as_string());
    c.loss.rank_cross = l.at("rank_cross").as_bool();
    c.loss.rank_in = l.at("rank_in").as_bool();
    c.loss.rank_schedule = parse_rank_weight_schedule(l.at("rank_schedule").as_string());
    c.loss.rank_weight = l.at("rank_weight").as_double();
    c.loss.rank_ramp_slope = l.at("rank_ramp_slope").as_double();
    c.loss.rank_ramp_cap = l.at("rank_ramp_cap").as_double();
    if (!l.at("lambda_cross").is_null()) c.loss.lambda_cross = l.at("lambda_cross").as_double();
    if (!l.at("lambda_in").is_null()) c.loss.lambda_in = l.at("lambda_in").as_double();
    c.loss.position_weighting = l.at("position_weighting").as_string() == "log" ? PositionWeighting::Log
                                                                                 : PositionWeighting::None;
    c.loss.listmle_eps = l.at("listmle_eps").as_double();
    c.loss.rank_divisor = l.at("rank_divisor").as_double();
    c.loss.cyclip_lambda_in = l.at("cyclip_lambda_in").as_double();
    c.loss.cyclip_lambda_cross = l.at("cyclip_lambda_cross").as_double();

    const Json& a = j.at("augment_options");
    c.augment_options.scale_min = a.at("scale_min").as_double();
    c.augment_options.scale_max = a.at("scale_max").as_double();
    c.augment_options.ratio_min = a.at("ratio_min").as_double();
    c.augment_options.ratio_max = a.at("ratio_max").as_double();
    c.augment_options.hflip = a.at("hflip").as_bool();

    c.model = j.at("model").as_string();
    c.data = j.at("data").as_string();
    c.vocab = j.at("vocab").as_string();
    c.batch_size = j.at("batch_size").as_int();
    c.epochs = j.at("epochs").as_int();
    c.steps = j.at("steps").as_int();
    c.lr = j.at("lr").as_double();
    c.weight_decay = j.at("weight_decay").as_double();
    c.beta1 = j.at("beta1").as_double();
    c.beta2 = j.at("beta2").as_double();
    c.eps = j.at("eps").as_double();
    c.warmup = j.at("warmup").as_int();
    c.schedule = parse_lr_schedule(j.at("schedule").as_string());
    c.grad_clip = j.at("grad_clip").as_double();
    c.accum = int(j.at("accum").as_int());
    c.augment = j.at("augment").as_bool();
    c.seed = uint64_t(j.at("seed").as_int());
    c.device = j.at("device").as_string();
    c.precision = j.at("precision").as_string();
    return c;
}

}  // namespace rankclip
