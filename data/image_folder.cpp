// data/image_folder.cpp
// defines: ImageFolderDataset (class-per-sub-folder image directories).
#include "data/image_folder.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>

#include "engine/error.h"

namespace rankclip {

// Sorted entries of `dir` (no "." / ".."); dirs_only picks sub-directories, else regular files.
static std::vector<std::string> list_dir(const std::string& dir, bool dirs_only) {
    DIR* d = ::opendir(dir.c_str());
    RC_CHECK(d, "image folder: cannot open directory '", dir, "'");
    std::vector<std::string> out;
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        struct stat st;
        if (::stat((dir + "/" + name).c_str(), &st) != 0) continue;
        if (dirs_only ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) out.push_back(name);
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

static bool is_image_name(const std::string& name) {
    size_t dot = name.find_last_of('.');
    if (dot == std::string::npos) return false;
    std::string ext = name.substr(dot + 1);
    for (auto& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
    for (const char* e : {"jpg", "jpeg", "png", "bmp", "gif", "tga", "ppm", "pgm"})
        if (ext == e) return true;
    return false;
}

ImageFolderDataset::ImageFolderDataset(const std::string& root, BadSamplePolicy on_bad)
    : root_(root), on_bad_(on_bad) {
    classes_ = list_dir(root, true);
    RC_CHECK(!classes_.empty(), "image folder '", root, "': no class sub-folders");
    for (size_t c = 0; c < classes_.size(); c++)
        for (auto& f : list_dir(root + "/" + classes_[c], false))
            if (is_image_name(f)) files_.push_back({root + "/" + classes_[c] + "/" + f, int64_t(c)});
    RC_CHECK(!files_.empty(), "image folder '", root, "': no image files in its ", classes_.size(),
             " class folders");
}

Sample ImageFolderDataset::get(size_t index) const {
    return get_with_policy(
        index, files_.size(), on_bad_, tracker_,
        [&](size_t i) {
            Sample s;
            s.image = decode_image_file(files_[i].first);
            s.label = files_[i].second;
            s.caption = classes_[size_t(s.label)];
            std::replace(s.caption.begin(), s.caption.end(), '_', ' ');
            return s;
        },
        [&](size_t i) { return files_[i].first; });
}

std::string ImageFolderDataset::describe() const {
    return str_cat("image folder '", root_, "': ", files_.size(), " images in ", classes_.size(), " classes",
                   skipped() ? str_cat(", ", skipped(), " bad samples skipped") : std::string());
}

}  // namespace rankclip
